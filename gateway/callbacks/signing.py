"""How a callback is signed and checked: HMAC-SHA256 over ``"<timestamp>.<raw body>"`` with the
account's callback secret, as Stripe signs its webhooks, so a receiver can check it with any
language's standard library (docs/callbacks.md, "Verifying a callback"). The timestamp is signed too,
so a captured request cannot be replayed after ``TOLERANCE_SECONDS``. ``verify`` is the receiving
side, as the reference receivers do it: for the tests' receivers and for Python code receiving."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["HEADER_EVENT_ID", "HEADER_SIGNATURE", "HEADER_TIMESTAMP", "TOLERANCE_SECONDS", "sign", "verify"]

HEADER_TIMESTAMP = "SmsEdge-Timestamp"
HEADER_SIGNATURE = "SmsEdge-Signature"
HEADER_EVENT_ID = "SmsEdge-Event-Id"
TOLERANCE_SECONDS = 300
_SCHEME = "v1="


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``SmsEdge-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return _SCHEME + mac.hexdigest()


def verify(
    secret: str, timestamp_header: str | None, signature_header: str | None, body: bytes, now: float
) -> bool:
    """Whether the headers sign ``body`` with ``secret`` within ``TOLERANCE_SECONDS`` of ``now``,
    either way. The header may hold several comma-separated values (one per secret during a
    rotation, other schemes beside): one matching ``v1=`` value is enough."""
    if not timestamp_header or not (timestamp_header.isascii() and timestamp_header.isdigit()):
        return False
    timestamp = int(timestamp_header)
    if abs(now - timestamp) > TOLERANCE_SECONDS or not signature_header:
        return False
    expected = sign(secret, timestamp, body).encode()
    offered = [value.strip() for value in signature_header.split(",")]
    return any(
        hmac.compare_digest(expected, value.encode()) for value in offered if value.startswith(_SCHEME)
    )
