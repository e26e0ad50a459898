"""Random ids in uuid4's formats, from random bytes drawn in bulk; and derived ones in the same form.

``uuid.uuid4()`` asks the kernel for 16 bytes each time (a syscall) and builds a ``UUID`` object;
these draw 8 KiB at once and slice it. The ids are as random as uuid4's (122 random bits, version
4 and its variant set), so they stay unique across processes and restarts the same way. A forked
child starts on fresh bytes of its own, never on its parent's unused ones.

``derived_uuid`` gives an idempotent send's message ids from its claim's token, so a retry after a
crash can find what the first attempt wrote.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

__all__ = ["derived_uuid", "new_hex_id", "new_uuid"]

_IDS_PER_DRAW = 512
# The variant bits of an RFC 4122 UUID: the first hex digit of the fourth group is 8, 9, a or b.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _versioned(raw: str) -> str:
    """32 hex digits with uuid4's version and variant digits put in place."""
    return f"{raw[:12]}4{raw[13:16]}{_VARIANT[raw[16]]}{raw[17:]}"


def _dashed(raw: str) -> str:
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _hex_ids() -> Iterator[str]:
    """uuid4().hex, forever: 32 hex digits with the version and variant digits in place."""
    while True:
        block = os.urandom(16 * _IDS_PER_DRAW).hex()
        for start in range(0, len(block), 32):
            yield _versioned(block[start : start + 32])


_stream = _hex_ids()


def _restart_in_child() -> None:
    global _stream  # a forked child must not reuse its parent's bytes
    _stream = _hex_ids()


os.register_at_fork(after_in_child=_restart_in_child)


def new_hex_id() -> str:
    """Like ``uuid.uuid4().hex``: request ids, claim tokens."""
    return next(_stream)


def new_uuid() -> str:
    """Like ``str(uuid.uuid4())``: message ids."""
    return _dashed(next(_stream))


def derived_uuid(seed: str, index: int) -> str:
    """The ``index``-th message id of an idempotent send whose claim token is ``seed``: the same
    every time, and as unguessable as the (random) token."""
    digest = hashlib.sha256(f"{seed}\n{index}".encode()).hexdigest()
    return _dashed(_versioned(digest[:32]))
