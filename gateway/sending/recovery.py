"""What an idempotent send that died left behind, as the deliveries its retry answers with.

An idempotent send's message ids derive from its claim's token (``SendInput.id_seed``), one per
number by its place in the request, so the retry that takes over a stale claim finds the records.
A reserve writes all its records or none; a number with none was refused by the gateway's own
windows. Records still unsettled are refunded first: whether the carrier took them is unknown.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from gateway.carriers.base import FailureKind, Outcome
from gateway.clock import local_day
from gateway.ids import derived_uuid
from gateway.phones import Phone
from gateway.reconcile import OUTCOME_UNKNOWN, settle_unsettled
from gateway.sending.model import OWN_PHONE_LIMIT, Delivery, SendInput
from gateway.store.base import Store
from gateway.store.records import Record

__all__ = ["previous_deliveries"]

log = logging.getLogger("smsedge.idempotency")

_UNKNOWN = frozenset({OUTCOME_UNKNOWN, "TIMEOUT"})  # error codes saying nobody knows what was sent
_WINDOW_RETRY_AFTER = 60  # seconds: what the refusing window said is no longer known


async def previous_deliveries(
    store: Store, account_id: int, send_input: SendInput, now: float, zone: ZoneInfo
) -> list[Delivery] | None:
    """The deliveries of the send that ``send_input.id_seed`` named; None if it wrote no record."""
    seed = send_input.id_seed
    if seed is None:
        raise ValueError("an idempotent send's input has its id seed")
    ids = [derived_uuid(seed, index) for index in range(len(send_input.phones))]
    found = await store.find_records(account_id, ids)
    if not found:
        return None
    refunded = await settle_unsettled(store, account_id, found, int(now * 1000), local_day(now, zone))
    if refunded:
        log.warning("a stale idempotency key's %d unsettled records refunded, outcome unknown", len(refunded))
        found = await store.find_records(account_id, ids)
    by_id = {record.message_id: record for record in found}
    return [
        _delivery(phone, by_id.get(message_id), send_input)
        for phone, message_id in zip(send_input.phones, ids, strict=True)
    ]


def _delivery(phone: Phone, record: Record | None, send_input: SendInput) -> Delivery:
    if record is None:  # written with the others or not at all: its window refused it
        outcome = Outcome(
            phone.e164,
            False,
            kind=FailureKind.RATE_LIMITED,
            code=OWN_PHONE_LIMIT,
            message="请稍后重试",
            retry_after=_WINDOW_RETRY_AFTER,
        )
        return Delivery(phone, None, send_input.provider or "", outcome)
    waiting = record.status == "pending" and record.carrier_id is not None  # for its receipt
    if record.status == "success" or waiting:
        outcome = Outcome(phone.e164, True, carrier_id=record.carrier_id)
        return Delivery(phone, record.message_id, record.provider, outcome, awaiting_receipt=waiting)
    code, _, message = (record.error or "").partition(": ")
    unknown = record.status != "failed" or code in _UNKNOWN
    kind = FailureKind.TIMEOUT if unknown else FailureKind.PERMANENT
    outcome = Outcome(phone.e164, False, kind=kind, code=code, message=message)
    return Delivery(phone, record.message_id, record.provider, outcome)
