"""API keys and secrets: generation, hashing at rest and constant-time verification.

Secrets are stored as scrypt hashes. scrypt is deliberately slow, so it runs in a worker thread, and a
successful check is remembered by a digest of the presented secret together with the stored hash:
a rotated secret changes the stored hash, so the memo can never let an old secret in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict

__all__ = ["SecretVerifier", "hash_secret", "new_api_key", "new_api_secret", "verify_secret"]

_N, _R, _P = 2**14, 8, 1
_SCHEME = "scrypt"


def new_api_key() -> str:
    return "sk_" + secrets.token_hex(12)


def new_api_secret() -> str:
    return secrets.token_urlsafe(24)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash``, all that is kept of a secret."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"{_SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return scheme == _SCHEME and hmac.compare_digest(actual, expected)


class SecretVerifier:
    """Verify secrets off the event loop, remembering recent successes (bounded LRU)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._verified: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._decoy = hash_secret(secrets.token_urlsafe(16))

    async def verify(self, secret: str, stored: str | None) -> bool:
        """True when ``secret`` matches ``stored``; an unknown key (None) takes the same time."""
        presented = hashlib.sha256(secret.encode()).digest()
        memo = (stored or "", presented)
        if stored is not None and memo in self._verified:
            self._verified.move_to_end(memo)
            return True
        ok = await asyncio.to_thread(verify_secret, secret, stored or self._decoy)
        if not ok or stored is None:
            return False
        self._verified[memo] = None
        if len(self._verified) > self._capacity:
            self._verified.popitem(last=False)
        return True
