"""Signing callbacks: ``v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`` (minimal; the
callbacks helper's version, with the reference receivers, replaces this one)."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["HEADER_EVENT_ID", "HEADER_SIGNATURE", "HEADER_TIMESTAMP", "TOLERANCE_SECONDS", "sign", "verify"]

HEADER_TIMESTAMP = "SmsEdge-Timestamp"
HEADER_SIGNATURE = "SmsEdge-Signature"
HEADER_EVENT_ID = "SmsEdge-Event-Id"
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(secret: str, timestamp_header: str, signature_header: str, body: bytes, now: float) -> bool:
    """A signature of ``secret`` among the header's ``v1=`` values, on a timestamp within the tolerance."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, given.strip()) for given in signature_header.split(","))
