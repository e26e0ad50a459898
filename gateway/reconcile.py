"""Settling records nobody settled: money a crash (or a Redis failover) left held on ``pending``.

A send reserves its price and writes its records ``pending`` before the carrier is called, then
settles them. A gateway killed in between, or a settle Redis lost on failover, leaves them
``pending`` with the money held for good. What the carrier did is unknown, so an operator chooses:
refund (``failed``, error ``OUTCOME_UNKNOWN``, the default) or charge as sent. Records ``pending``
*with* a carrier id were settled and wait for a delivery receipt: never touched here.

``settle_unsettled`` is shared by ``run.py reconcile`` and the Idempotency-Key retry that finds a
crashed attempt's records; it goes through :class:`Store` only, so it works on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.phones import scrub
from gateway.store.base import Account, Store
from gateway.store.records import Record, RecordQuery, Settlement

__all__ = [
    "OUTCOME_UNKNOWN",
    "AccountReport",
    "money_moved",
    "reconcile_account",
    "settle_unsettled",
    "unsettled",
]

OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
_UNKNOWN_ERROR = f"{OUTCOME_UNKNOWN}: the gateway stopped before the carrier's answer was recorded"
_PAGE = 1000  # records read per page while collecting
_CHUNK = 500  # records settled per call: one transaction or script of bounded size


def unsettled(record: Record) -> bool:
    """Pending and never settled: what ``Store.settle`` still changes (no carrier id, no error)."""
    return record.status == "pending" and record.carrier_id is None and record.error is None


def _settlement(record: Record, as_sent: bool) -> Settlement:
    if as_sent:  # charged what was reserved, counted as sent
        return Settlement(
            record.message_id, "success", record.provider, record.price_milli, segments=record.segments
        )
    return Settlement(
        record.message_id, "failed", record.provider, 0, error=_UNKNOWN_ERROR, segments=record.segments
    )


async def settle_unsettled(
    store: Store, account_id: int, records: list[Record], now_ms: int, day: str, *, as_sent: bool = False
) -> list[Record]:
    """Settle the unsettled ``records`` of the account as refunded (or ``as_sent``); return them.

    Settle itself changes only unsettled records, so a record someone else settled meanwhile is
    left as they did it, and running this twice never refunds twice.
    """
    stale = [record for record in records if unsettled(record)]
    for start in range(0, len(stale), _CHUNK):
        chunk = stale[start : start + _CHUNK]
        await store.settle(account_id, [_settlement(r, as_sent) for r in chunk], now_ms, day)
    return stale


@dataclass(frozen=True, slots=True)
class AccountReport:
    """What one account had pending past the cutoff, and what became of it."""

    account: Account
    reconciled: int  # unsettled records settled (or, on a dry run, that would be)
    milli: int  # their reserved money: refunded, or charged with ``as_sent``
    awaiting_receipt: int  # pending with a carrier id: left for their receipts

    def public(self, as_sent: bool) -> dict[str, object]:
        return {
            "name": scrub(self.account.name),
            "api_key": self.account.api_key,
            "reconciled": self.reconciled,
            **money_moved(self.milli, as_sent),
            "awaiting_receipt": self.awaiting_receipt,
        }


def money_moved(milli: int, as_sent: bool) -> dict[str, float]:
    """Reserved money in yuan, as refunded or (``as_sent``) charged: the report's two columns."""
    money = milli / 1000
    return {"refunded": 0.0 if as_sent else money, "charged": money if as_sent else 0.0}


async def _pending_before(store: Store, account_id: int, cutoff_ms: int) -> list[Record]:
    """Every pending record created at or before ``cutoff_ms``, read in full before any is settled
    (settling shrinks the pending set under the pages)."""
    found: list[Record] = []
    page = 1
    while True:
        query = RecordQuery(page=page, per_page=_PAGE, status="pending", end_ms=cutoff_ms)
        records = (await store.records(account_id, query)).records
        found += records
        if len(records) < _PAGE:
            return found
        page += 1


async def reconcile_account(
    store: Store,
    account: Account,
    cutoff_ms: int,
    now_ms: int,
    day: str,
    *,
    as_sent: bool = False,
    dry_run: bool = False,
) -> AccountReport:
    """Settle the account's records left pending since ``cutoff_ms`` or before (see the module)."""
    pending = await _pending_before(store, account.id, cutoff_ms)
    stale = [record for record in pending if unsettled(record)]
    if not dry_run:
        await settle_unsettled(store, account.id, stale, now_ms, day, as_sent=as_sent)
    return AccountReport(
        account, len(stale), sum(record.price_milli for record in stale), len(pending) - len(stale)
    )
