"""Delivery receipts on Redis: finding a record from a receipt across accounts, and early receipts.

A receipt names a message by (provider, carrier id, number hash), not by account, so each identity
has keys of its own in one slot, where PARK_RECEIPT and LINK_RECEIPT serialise: a receipt either
finds its record or is parked for settle to pick up. Parked receipts are capped in total
(``max_parked_receipts``), oldest dropped first, as on SQLite.
The keys, the scripts and what a crash leaves: (docs/sending.md, "On Redis").
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.typing import EncodableT

from gateway.redis.client import Lua, SharedClient
from gateway.store.records import (
    EARLY_RECEIPT_TTL_MS,
    MAX_PARKED_RECEIPTS,
    ReceiptsApplied,
    ReceiptUpdate,
    Settlement,
)
from gateway.store.redis.keys import Keys, optional
from gateway.store.redis.receipt_scripts import FINALISE, INDEX_PARKED, LINK_RECEIPT, PARK_RECEIPT

__all__ = ["Receipts"]

#: How long a parked receipt outlives its linking (for a retried LINK_RECEIPT), in milliseconds.
LINK_GRACE_MS = 60_000

# (record id, final status, error?, the carrier's segments or 0) per record, grouped by account
_Finals = dict[int, list[tuple[int, str, str | None, int]]]


def _parked(receipt: ReceiptUpdate, now_ms: int) -> str:
    return f"{now_ms}|{int(receipt.delivered)}|{optional(receipt.error)}"


def _unparked(value: bytes | None, now_ms: int) -> tuple[str, str | None, int] | None:
    """The (status, error, segments) a parked receipt gives, unless it is older than the TTL (by the
    caller's clock, as SQLite counts it: Redis's own expiry counts wall time). Its count is not
    kept, as on SQLite: the record keeps the count it was settled with."""
    if value is None:
        return None
    received, delivered, error = value.decode().split("|", 2)
    if int(received) < now_ms - EARLY_RECEIPT_TTL_MS:
        return None
    return ("success", None, 0) if delivered == "1" else ("failed", error[1:] if error else None, 0)


class Receipts:
    def __init__(self, client: SharedClient, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._park = Lua(client, PARK_RECEIPT, write=True)
        self._link = Lua(client, LINK_RECEIPT, write=True)
        self._finalise = Lua(client, FINALISE, write=True)
        self._index = Lua(client, INDEX_PARKED)

    async def link(self, account_id: int, waiting: list[tuple[Settlement, int, str]], now_ms: int) -> None:
        """Make settled records findable by their receipts; apply the receipts that came early."""
        identities = []
        for settlement, _, phone_hash in waiting:
            assert settlement.carrier_id
            identities.append(self._keys.receipt(settlement.provider, settlement.carrier_id, phone_hash))
        replies = await self._link.many(
            [
                (keys, (f"{account_id}:{record_id}", LINK_GRACE_MS))
                for keys, (_, record_id, _) in zip(identities, waiting, strict=True)
            ]
        )
        finals: _Finals = {}
        claimed: list[str] = []
        for (_, early_key), (_, record_id, _), reply in zip(identities, waiting, replies, strict=True):
            if reply is not None:
                claimed.append(early_key)
            early = _unparked(reply, now_ms)
            if early is not None:
                finals.setdefault(account_id, []).append((record_id, *early))
        if claimed:  # no longer waiting: out of the cap's count (the keys expire after the grace)
            await self._client.zrem(self._keys.parked_receipts, *claimed)
        await self._apply(finals, now_ms)

    async def apply(
        self, provider: str, receipts: list[ReceiptUpdate], now_ms: int, cap: int = MAX_PARKED_RECEIPTS
    ) -> ReceiptsApplied:
        """Re-price the records the receipts name by the carrier's count (once), finalise the
        pending ones; park those naming none yet, at most ``cap`` in all (the oldest are dropped)."""
        identities = [self._keys.receipt(provider, r.carrier_id, r.phone_hash) for r in receipts]
        replies = await self._park.many(
            [
                (keys, (_parked(receipt, now_ms), now_ms, EARLY_RECEIPT_TTL_MS))
                for receipt, keys in zip(receipts, identities, strict=True)
            ]
        )
        finals: _Finals = {}
        parked: list[EncodableT] = []
        for receipt, (_, early_key), (members, parked_ms) in zip(receipts, identities, replies, strict=True):
            if not members:
                parked += [int(parked_ms), early_key]
            status, error = ("success", None) if receipt.delivered else ("failed", receipt.error)
            for member in members:
                account_id, record_id = member.decode().split(":")
                finals.setdefault(int(account_id), []).append(
                    (int(record_id), status, error, receipt.segments or 0)
                )
        if parked:
            await self._cap(parked, now_ms, cap)
        return await self._apply(finals, now_ms)

    async def _cap(self, parked: list[EncodableT], now_ms: int, cap: int) -> None:
        """Index the receipts just parked; delete the oldest beyond ``cap``."""
        dropped = await self._index(
            (self._keys.parked_receipts,), (cap, now_ms - EARLY_RECEIPT_TTL_MS, *parked)
        )
        if dropped:
            async with self._client.pipeline(transaction=False) as pipe:
                for key in dropped:  # one key per command: they live in many slots
                    pipe.delete(key)
                await pipe.execute()

    async def _apply(self, finals: _Finals, now_ms: int) -> ReceiptsApplied:
        """One FINALISE per account, in the order the receipts came (the first final word wins)."""
        if not finals:
            return ReceiptsApplied(0, [])
        replies = await self._finalise.many(
            [
                (
                    [
                        self._keys.account(account_id),
                        *(
                            self._keys.records(account_id, status)
                            for status in ("pending", "success", "failed")
                        ),
                    ],
                    (self._keys.record_base(account_id), now_ms, *_flatten(updates)),
                )
                for account_id, updates in finals.items()
            ]
        )
        recounted = [
            (int(counts[i]), int(counts[i + 1])) for _, counts in replies for i in range(0, len(counts), 2)
        ]
        return ReceiptsApplied(sum(int(changed) for changed, _ in replies), recounted)


def _flatten(updates: Iterable[tuple[int, str, str | None, int]]) -> list[EncodableT]:
    return [
        value
        for record_id, status, error, segments in updates
        for value in (record_id, status, optional(error), segments)
    ]
