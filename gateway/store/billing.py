"""What every store keeps for billing: records awaiting a receipt (status pull), usage, leases.

The part of :class:`~gateway.store.base.Store` that ``gateway.billing`` uses: the pull asks the
carrier about records whose receipt never came (``awaiting_receipts``, ``pulled``), stops asking
after ``receipts.give_up_after`` (``give_up_receipts``), and one process of a fleet does it at a
time (``take_lease``); the usage report adds up the records (``usage``). Money is integer
milli-yuan, time integer epoch milliseconds.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

__all__ = ["NO_RECEIPT_ERROR", "USAGE_BUCKET_MS", "Awaiting", "Billing", "UsageBucket"]

#: Usage is kept per quarter hour of ``created``: every time zone's day is whole quarter hours, so
#: the report can add them up into the days of whichever zone it is asked in.
USAGE_BUCKET_MS = 15 * 60 * 1000

#: The error of a record ``give_up_receipts`` refunded (every store writes the same).
NO_RECEIPT_ERROR = "NO_RECEIPT: no delivery receipt within receipts.give_up_after (refunded)"


class Awaiting(msgspec.Struct, frozen=True):
    """One record whose receipt is late: what a status query needs, and how to name it again."""

    account_id: int
    record_id: int  # the store's id of the record within its account
    carrier_id: str
    sealed_phone: str  # ``gateway.billing.sealing``: opened only to ask the carrier
    message_id: str  # what the number was sealed with (its associated data)
    created_ms: int


class UsageBucket(msgspec.Struct, frozen=True, array_like=True):
    """The records of one account on one carrier created in one quarter hour, added up."""

    account_id: int
    provider: str
    start_ms: int  # a multiple of ``USAGE_BUCKET_MS``
    messages: int
    segments: int
    charged_milli: int
    refunded_milli: int


class Billing(Protocol):
    async def awaiting_receipts(self, provider: str, now_ms: int, limit: int) -> list[Awaiting]:
        """Up to ``limit`` of ``provider``'s records waiting for a receipt whose next pull is due
        (the earliest due first)."""
        ...

    async def pulled(self, provider: str, asked: list[Awaiting], next_pull_ms: int) -> None:
        """Those records were asked about: not again before ``next_pull_ms`` (those a receipt
        finalised meanwhile are left as they are)."""
        ...

    async def give_up_receipts(
        self, provider: str, sent_before_ms: int, refund: bool, now_ms: int, limit: int
    ) -> int:
        """Stop waiting for the receipts of up to ``limit`` of ``provider``'s records sent before
        ``sent_before_ms``: each keeps its status and is marked ``no_receipt`` (its sealed number
        dropped), or with ``refund`` fails as ``NO_RECEIPT`` and is refunded. Each with a callback
        URL gets its event. Returns how many."""
        ...

    async def take_lease(self, name: str, owner: str, now_ms: int, ttl_ms: int) -> bool:
        """Hold ``name`` for ``owner`` until ``now_ms + ttl_ms`` if it is free, expired or already
        ``owner``'s: of a fleet asking at once, one gets it."""
        ...

    async def usage(self, start_ms: int, end_ms: int, account_id: int | None) -> list[UsageBucket]:
        """The records created in ``[start_ms, end_ms)`` (one account's, or all), added up per
        account, carrier and quarter hour."""
        ...
