"""Send records and their receipts, as every store keeps them.

The plain types a send leaves behind (reserved, settled, finalised by a delivery receipt) and the
record pages read back; apart from :mod:`gateway.store.base` because the sending, receipt and
records paths need these and nothing of the accounts. Money is integer milli-yuan, time integer
epoch milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import msgspec

__all__ = [
    "EARLY_RECEIPT_TTL_MS",
    "MAX_PARKED_RECEIPTS",
    "STATUSES",
    "NewRecord",
    "ReceiptUpdate",
    "ReceiptsApplied",
    "Record",
    "RecordPage",
    "RecordQuery",
    "Settlement",
]

STATUSES = ("pending", "success", "failed")

#: How long a receipt that names no record yet is kept: settle follows the carrier's answer within
#: seconds, so a day only ever holds receipts for sends we never learned the id of (timeouts).
EARLY_RECEIPT_TTL_MS = 24 * 3600 * 1000

#: How many receipts naming no record yet a store keeps in all (the default of every store's
#: ``max_parked_receipts``): the oldest go first past it. Far above what the few seconds between
#: a push and its settle ever hold, so only strays are ever dropped.
MAX_PARKED_RECEIPTS = 10_000


class NewRecord(msgspec.Struct, frozen=True):
    message_id: str
    phone: str  # masked
    template_id: str
    provider: str
    price_milli: int  # reserved: the dearest carrier the send may end up on
    phone_hash: str = ""  # keyed hash of the number, to match delivery receipts
    callback_url: str | None = None  # where its status changes are posted (``gateway.callbacks``)
    segments: int = 1  # the gateway's count for ``provider`` (``gateway.billing.segments``)


class Settlement(msgspec.Struct, frozen=True):
    """The carrier's word on one record: it is charged ``price_milli`` (the carrier that finally
    took it; 0 when refused) and refunded the rest of what was reserved; accepted ones are counted."""

    message_id: str
    status: str  # success | failed | pending (accepted, waiting for a delivery receipt)
    provider: str
    price_milli: int
    carrier_id: str | None = None
    error: str | None = None
    segments: int = 1  # what it is billed as: the carrier's count where it gave one, else ours
    #: The number, sealed (``gateway.billing.sealing``), while the record waits for its receipt: a
    #: status pull must name it to the carrier. None when no receipt is awaited.
    sealed_phone: str | None = None
    pull_at_ms: int | None = None  # when to ask the carrier if the receipt has not come by then
    carrier_counted: bool = False  # the carrier's own count is ``segments`` (no receipt may change it)


@dataclass(frozen=True, slots=True)
class ReceiptUpdate:
    """A carrier's delivery receipt as the store sees it: the number only as its keyed hash."""

    carrier_id: str
    phone_hash: str
    delivered: bool
    error: str | None = None  # "code: description", scrubbed; None when delivered
    segments: int | None = None  # the carrier's billed count (Aliyun ``sms_size``): adjusts the charge once


class ReceiptsApplied(NamedTuple):
    """What applying a push of receipts did."""

    changed: int  # records finalised
    #: (gateway's count, carrier's count) of each record whose charge a receipt's count adjusted
    recounted: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Record:
    id: int  # numbered per account (1, 2, 3 … for each), never a global count
    message_id: str
    phone: str
    template_id: str
    provider: str
    status: str
    error: str | None
    created_ms: int
    updated_ms: int
    price_milli: int  # what the account is charged for it now: 0 once refunded
    carrier_id: str | None = None  # set by settle once a carrier took it (receipts match by it)
    callback_url: str | None = None  # where its events go; None: no events
    segments: int = 1  # what it is billed as (the carrier's count where it gave one)
    refunded_milli: int = 0  # given back after being charged: refused, or no receipt and refund_unknown
    no_receipt: bool = False  # the receipt never came and the gateway stopped asking (give_up_after)


@dataclass(frozen=True, slots=True)
class RecordQuery:
    page: int = 1
    per_page: int = 10
    status: str | None = None
    start_ms: int | None = None  # inclusive
    end_ms: int | None = None  # inclusive


@dataclass(frozen=True, slots=True)
class RecordPage:
    records: list[Record]
    total: int
