"""The audit log's records: who changed which account how, as every store keeps them.

An entry names the account by name and API key (never its secret or the secret's hash) and holds
only the fields the change touched, in their public form (``Account.public``): ``before`` and
``after``. Stores keep ``before``/``after`` as JSON text; :func:`encode_changes` and
:func:`decode_changes` are the one way in and out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

__all__ = ["AUDIT_ACTIONS", "AuditEntry", "AuditPage", "decode_changes", "encode_changes"]

#: What an entry's ``action`` may be.
AUDIT_ACTIONS = (
    "create",
    "topup",
    "update",
    "disable",
    "enable",
    "rotate-secret",
    "callback-secret",
    "callback-replay",
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at_ms: int
    actor: str  # the admin token's name, ``cli``, or ``config`` (``gateway.accounts.listed``)
    action: str
    account_name: str
    api_key: str
    before: dict[str, object] = field(default_factory=dict)
    after: dict[str, object] = field(default_factory=dict)
    reason: str | None = None  # a top-up's
    id: int = 0  # given by the store: higher is newer


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]  # newest first
    total: int


def encode_changes(changes: dict[str, object]) -> str:
    return orjson.dumps(changes).decode()


def decode_changes(text: str | bytes | None) -> dict[str, object]:
    decoded = orjson.loads(text) if text else {}
    return decoded if isinstance(decoded, dict) else {}
