"""The callback outbox on Redis: events are written by SETTLE and FINALISE in the script of the
change they report (``outbox_scripts``); this is the deliverer's side, account by account.

Each account's events live in its own slot, so a claim asks every account with a due event (one
pipelined read finds them) and splits what the deliverer has room for between them: one busy
account cannot take every claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from gateway.redis.client import Lua, SharedClient
from gateway.redis.health import RedisHealth, guarded
from gateway.store.base import StoreUnavailable
from gateway.store.callbacks import ENDED_KEPT_MS, Finish, OutboxEvent, refuse_unknown_outcomes
from gateway.store.redis.keys import Keys, optional, text
from gateway.store.redis.outbox_scripts import CLAIM, DEAD_PAGE, FINISH, REPLAY

__all__ = ["RedisOutbox"]


def _event(row: list[bytes | None]) -> OutboxEvent:
    (event_id, account_id, message_id, sequence, kind, url, facts, attempts, created, due, state, error) = (
        row[:12]
    )
    return OutboxEvent(
        text(event_id) or "",
        int(account_id or 0),
        text(message_id) or "",
        int(sequence or 0),
        text(kind) or "",
        text(url) or "",
        facts or b"{}",
        int(attempts or 0),
        int(created or 0),
        int(due or 0),
        text(state) or "",
        text(error),
    )


class RedisOutbox:
    """Mixed into :class:`~gateway.store.redis.store.RedisStore`: ``CallbackOutbox`` on its client."""

    client: SharedClient
    keys: Keys
    health: RedisHealth

    _claim: Lua
    _finish: Lua
    _dead_page: Lua
    _replay: Lua

    if TYPE_CHECKING:  # the store's own

        async def _account_ids(self) -> list[int]: ...

    def _outbox_scripts(self) -> None:
        """The scripts, loaded once (the store's constructor calls this)."""
        self._claim = Lua(self.client, CLAIM, write=True)
        self._finish = Lua(self.client, FINISH, write=True)
        self._dead_page = Lua(self.client, DEAD_PAGE)
        self._replay = Lua(self.client, REPLAY, write=True)

    def _cb(self, account_id: int) -> str:
        return self.keys.account(account_id).removesuffix("account") + "cb:"

    def _sets(self, account_id: int) -> tuple[str, str, str]:
        cb = self._cb(account_id)
        return cb + "pending", cb + "age", cb + "dead"

    @guarded(StoreUnavailable)
    async def claim_callbacks(self, now_ms: int, lease_ms: int, limit: int, token: str) -> list[OutboxEvent]:
        ids = await self._account_ids()
        async with self.client.pipeline(transaction=False) as pipe:
            for account_id in ids:
                pipe.zrangebyscore(self._sets(account_id)[0], "-inf", now_ms, start=0, num=1)
            firsts = await pipe.execute()
        due = [account_id for account_id, first in zip(ids, firsts, strict=True) if first]
        if not due or limit <= 0:
            return []
        share = max(1, limit // len(due))
        replies = await self._claim.many(
            [
                (
                    (self._sets(account_id)[0], self.keys.account(account_id)),
                    (self._cb(account_id), now_ms, now_ms + lease_ms, share, token),
                )
                for account_id in due[:limit]
            ]
        )
        events = [replace(_event(row), api_key=text(row[12]) or "") for reply in replies for row in reply]
        return sorted(events, key=lambda event: (event.next_ms, event.sequence))[:limit]

    @guarded(StoreUnavailable)
    async def finish_callbacks(self, token: str, finishes: Sequence[Finish], now_ms: int) -> None:
        refuse_unknown_outcomes(finishes)
        calls = []
        for event_id, outcome, next_ms, error in finishes:
            account, _, _ = event_id.partition("-")
            if account.isdigit():  # else not an event of this store's: nothing to finish
                args = (self._cb(int(account)), event_id, token, outcome, next_ms or 0, optional(error))
                calls.append((self._sets(int(account)), (*args, ENDED_KEPT_MS)))
        await self._finish.many(calls)

    @guarded(StoreUnavailable)
    async def callback_backlog(self, now_ms: int) -> tuple[int, float]:
        ids = await self._account_ids()
        async with self.client.pipeline(transaction=False) as pipe:
            for account_id in ids:
                age = self._sets(account_id)[1]
                pipe.zcard(age)
                pipe.zrange(age, 0, 0, withscores=True)
            replies = await pipe.execute()
        count = sum(int(n) for n in replies[0::2])
        oldest = min((int(first[0][1]) for first in replies[1::2] if first), default=None)
        return count, max(0, now_ms - oldest) / 1000 if oldest is not None else 0.0

    @guarded(StoreUnavailable)
    async def dead_callbacks(
        self, account_id: int, page: int, per_page: int
    ) -> tuple[list[OutboxEvent], int]:
        start = (page - 1) * per_page
        total, rows = await self._dead_page(
            (self._sets(account_id)[2],), (self._cb(account_id), start, start + per_page - 1)
        )
        return [_event(row) for row in rows], int(total)

    async def prune_callbacks(self, now_ms: int) -> int:
        return 0  # FINISH gives ended events a TTL of ENDED_KEPT_MS: Redis drops them itself

    @guarded(StoreUnavailable)
    async def replay_callbacks(self, account_id: int, now_ms: int) -> int:
        return int(await self._replay(self._sets(account_id), (self._cb(account_id), now_ms)))
