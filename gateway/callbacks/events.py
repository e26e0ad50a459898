"""What a callback says: the JSON body of one event, built from what the outbox kept.

The body is the record as its status change left it (the outbox's ``facts``), so every retry of
an event posts the same bytes. Nothing about the number but its masked form; the carrier's error
split into its code and (scrubbed) description.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec

from gateway.phones import scrub
from gateway.store.callbacks import OutboxEvent

__all__ = ["CallbackBody", "body_of"]


class CallbackBody(msgspec.Struct):
    event_id: str
    type: str  # accepted | delivered | failed | no_receipt (the gateway stopped waiting for one)
    sequence: int  # 1, 2, … per record, in the order its events happened
    message_id: str
    phone: str  # masked
    template_id: str
    provider: str
    status: str  # the record's status after the change: pending | success | failed
    error_code: str | None
    error_message: str | None
    segments: int
    price: float  # yuan charged now, a JSON number as GET /api/sms/records shows it (0 once refunded)
    occurred_at: str  # RFC 3339 with the offset of server.timezone
    account: str  # the account's name


class _Facts(msgspec.Struct):
    phone: str
    template_id: str
    provider: str
    status: str
    error: str | None
    price_milli: int
    occurred_ms: int
    segments: int = 1  # events written before billing knew segments


_facts = msgspec.json.Decoder(_Facts)
_encode = msgspec.json.Encoder().encode


def _error(text: str | None) -> tuple[str | None, str | None]:
    """The carrier's ``code: description`` as its two parts (scrubbed); a bare text is a description."""
    if not text:
        return None, None
    code, colon, description = text.partition(": ")
    if not colon:
        return None, scrub(text)
    return scrub(code), scrub(description) or None


def body_of(event: OutboxEvent, account_name: str, zone: ZoneInfo) -> bytes:
    facts = _facts.decode(event.facts)
    error_code, error_message = _error(facts.error)
    occurred = datetime.fromtimestamp(facts.occurred_ms / 1000, zone).isoformat(timespec="milliseconds")
    return _encode(
        CallbackBody(
            event_id=event.event_id,
            type=event.type,
            sequence=event.sequence,
            message_id=event.message_id,
            phone=facts.phone,
            template_id=facts.template_id,
            provider=facts.provider,
            status=facts.status,
            error_code=error_code,
            error_message=error_message,
            segments=facts.segments,
            price=facts.price_milli / 1000,  # as gateway.api.records shows it: at most 3 decimals
            occurred_at=occurred,
            account=scrub(account_name),
        )
    )
