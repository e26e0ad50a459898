"""Billing on Redis: the status pull's records, giving up on receipts, leases, usage.

Records awaiting a receipt are indexed per account and carrier, in the account's slot
(``billing_scripts``); like the callback deliverer, the pull and the give-up visit every account in
one pipelined round and then only those with something due. Usage adds the records up page by page,
a script per page and account: exact, never sampled, and no page holds Redis long.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.redis.client import Call, Lua, SharedClient
from gateway.redis.health import RedisHealth, guarded
from gateway.store.base import StoreUnavailable
from gateway.store.billing import NO_RECEIPT_ERROR, USAGE_BUCKET_MS, Awaiting, UsageBucket
from gateway.store.redis.billing_scripts import GIVE_UP, TAKE_LEASE, USAGE_PAGE
from gateway.store.redis.keys import Keys, text

__all__ = ["RedisBilling"]

_AWAITING_FIELDS = ("carrier_id", "sealed_phone", "message_id", "created_ms")
_USAGE_PAGE = 1000  # records a usage script reads at once (about a millisecond of Redis's time)

_guarded = guarded(StoreUnavailable)


class RedisBilling:
    """Mixed into :class:`~gateway.store.redis.store.RedisStore`: ``Billing`` on its client."""

    client: SharedClient
    keys: Keys
    health: RedisHealth

    _give_up: Lua
    _take_lease: Lua
    _usage_page: Lua

    if TYPE_CHECKING:  # the store's own

        async def _account_ids(self) -> list[int]: ...

    def _billing_scripts(self) -> None:
        """The scripts, loaded once (the store's constructor calls this)."""
        self._give_up = Lua(self.client, GIVE_UP, write=True)
        self._take_lease = Lua(self.client, TAKE_LEASE, write=True)
        self._usage_page = Lua(self.client, USAGE_PAGE)

    @_guarded
    async def awaiting_receipts(self, provider: str, now_ms: int, limit: int) -> list[Awaiting]:
        ids = await self._account_ids()
        if not ids or limit <= 0:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for account_id in ids:
                pipe.zrangebyscore(
                    self.keys.pulls(account_id, provider), "-inf", now_ms, start=0, num=limit, withscores=True
                )
            replies = await pipe.execute()
        due = sorted(
            (score, account_id, int(member))
            for account_id, reply in zip(ids, replies, strict=True)
            for member, score in reply
        )[:limit]
        if not due:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for _, account_id, record_id in due:
                pipe.hmget(f"{self.keys.record_base(account_id)}{record_id}", _AWAITING_FIELDS)
            rows = await pipe.execute()
        return [
            Awaiting(
                account_id, record_id, text(carrier) or "", sealed.decode(), text(message) or "", int(created)
            )
            for (_, account_id, record_id), (carrier, sealed, message, created) in zip(due, rows, strict=True)
            if sealed is not None  # else a receipt finalised it in between
        ]

    @_guarded
    async def pulled(self, provider: str, asked: list[Awaiting], next_pull_ms: int) -> None:
        by_account: dict[int, dict[str, int]] = {}
        for record in asked:
            by_account.setdefault(record.account_id, {})[f"{record.record_id:015d}"] = next_pull_ms
        if not by_account:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for account_id, members in by_account.items():
                # XX: only those still waiting (a receipt may have finalised one since)
                pipe.zadd(self.keys.pulls(account_id, provider), members, xx=True)
            await pipe.execute()

    @_guarded
    async def give_up_receipts(
        self, provider: str, sent_before_ms: int, refund: bool, now_ms: int, limit: int
    ) -> int:
        """One GIVE_UP per account with records that old, ``limit`` shared out in account order."""
        ids = await self._account_ids()
        if not ids or limit <= 0:
            return 0
        async with self.client.pipeline(transaction=False) as pipe:
            for account_id in ids:
                pipe.zcount(self.keys.unreceipted(account_id, provider), "-inf", f"({sent_before_ms}")
            counts = await pipe.execute()
        calls: list[Call] = []
        left = limit
        for account_id, count in zip(ids, counts, strict=True):
            take = min(int(count), left)
            if take > 0:
                keys = self.keys
                calls.append(
                    (
                        (
                            keys.account(account_id),
                            keys.unreceipted(account_id, provider),
                            keys.records(account_id, "pending"),
                            keys.records(account_id, "failed"),
                        ),
                        (
                            keys.record_base(account_id),
                            sent_before_ms,
                            int(refund),
                            now_ms,
                            take,
                            NO_RECEIPT_ERROR,
                        ),
                    )
                )
                left -= take
        return sum(int(given) for given in await self._give_up.many(calls)) if calls else 0

    @_guarded
    async def take_lease(self, name: str, owner: str, now_ms: int, ttl_ms: int) -> bool:
        held = await self._take_lease((self.keys.lease(name),), (owner, now_ms, now_ms + ttl_ms, ttl_ms))
        return bool(held)

    @_guarded
    async def usage(self, start_ms: int, end_ms: int, account_id: int | None) -> list[UsageBucket]:
        """Every account's pages in step: one round of scripts per page, all accounts at once."""
        cursors = {
            a: (start_ms, 0) for a in (await self._account_ids() if account_id is None else [account_id])
        }
        sums: dict[tuple[int, str, int], list[int]] = {}
        while cursors:
            reading = list(cursors)
            replies = await self._usage_page.many(
                [
                    (
                        (self.keys.records(a),),
                        (self.keys.record_base(a), *cursors[a], end_ms, _USAGE_PAGE, USAGE_BUCKET_MS),
                    )
                    for a in reading
                ]
            )
            for a, (low, offset, read, flat) in zip(reading, replies, strict=True):
                for i in range(0, len(flat), 6):
                    provider, bucket, *counts = flat[i : i + 6]
                    total = sums.setdefault((a, text(provider) or "", int(bucket)), [0, 0, 0, 0])
                    for j, count in enumerate(counts):
                        total[j] += int(count)
                if int(read) < _USAGE_PAGE:
                    del cursors[a]
                else:
                    cursors[a] = (int(low), int(offset))
        return [UsageBucket(*key, *totals) for key, totals in sorted(sums.items())]
