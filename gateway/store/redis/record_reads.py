"""Reading an account's records back on Redis: a page of them (with its exact total), or some by
message id, each in one script of the account's slot (``scripts``: RECORDS, FIND_RECORDS)."""

from __future__ import annotations

from gateway.redis.client import Lua
from gateway.redis.health import RedisHealth, guarded
from gateway.store.base import StoreUnavailable
from gateway.store.records import Record, RecordPage, RecordQuery
from gateway.store.redis.keys import Keys, decode_record

__all__ = ["RecordReads"]

_guarded = guarded(StoreUnavailable)


class RecordReads:
    """Mixed into :class:`~gateway.store.redis.store.RedisStore`: uses its keys, health, scripts."""

    keys: Keys
    health: RedisHealth
    _records: Lua
    _find_records: Lua

    @_guarded
    async def records(self, account_id: int, query: RecordQuery) -> RecordPage:
        low = "-inf" if query.start_ms is None else query.start_ms
        high = "+inf" if query.end_ms is None else query.end_ms
        total, rows = await self._records(
            (self.keys.records(account_id, query.status),),
            (self.keys.record_base(account_id), low, high, (query.page - 1) * query.per_page, query.per_page),
        )
        return RecordPage([decode_record(row) for row in rows], int(total))

    @_guarded
    async def find_records(self, account_id: int, message_ids: list[str]) -> list[Record]:
        if not message_ids:
            return []
        rows = await self._find_records(
            (self.keys.messages(account_id),), (self.keys.record_base(account_id), *message_ids)
        )
        return [decode_record(row) for row in rows]
