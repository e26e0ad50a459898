"""The audit log on Redis, the stream of changed accounts, and finding a record by message id.

The log and its counter share one hash tag, so one script appends an entry in one Cluster slot; each
entry also adds the account's key to the ``account-changes`` stream that every gateway follows
(``gateway.store.changes``). Finding a record by message id asks every account's index: an
operator's lookup, never on the send path.
Details: (docs/stores.md, "The audit log and the stream of changes"; "Finding a message").
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, cast

import orjson

from gateway.redis.client import Lua, SharedClient
from gateway.redis.health import RedisHealth, guarded
from gateway.store.audit import AuditEntry, AuditPage
from gateway.store.base import Account, StoreUnavailable
from gateway.store.records import Record
from gateway.store.redis.keys import Keys, StreamEntries

__all__ = ["CHANGES_KEPT", "RedisAudit"]

#: About how many changes the stream keeps; a process further behind (it would have to miss this
#: many between two reads) misses the oldest, whose entries then expire by the cache's own bound.
CHANGES_KEPT = 10_000

# KEYS: the counter, the list. ARGV: the entry as JSON. Returns the entry's id.
_APPEND = """
local id = redis.call('INCR', KEYS[1])
redis.call('LPUSH', KEYS[2], id .. ' ' .. ARGV[1])
return id
"""

# KEYS: the list. ARGV: first, last index. One snapshot: {total, entries}.
_PAGE = """
return {redis.call('LLEN', KEYS[1]), redis.call('LRANGE', KEYS[1], ARGV[1], ARGV[2])}
"""

_guarded = guarded(StoreUnavailable)


def _encode(entry: AuditEntry) -> str:
    return orjson.dumps(
        {
            "at": entry.at_ms,
            "actor": entry.actor,
            "action": entry.action,
            "name": entry.account_name,
            "key": entry.api_key,
            "before": entry.before,
            "after": entry.after,
            "reason": entry.reason,
        }
    ).decode()


def _decode(value: bytes) -> AuditEntry:
    entry_id, _, text = value.partition(b" ")
    data = orjson.loads(text)
    return AuditEntry(
        data["at"],
        data["actor"],
        data["action"],
        data["name"],
        data["key"],
        data["before"],
        data["after"],
        data["reason"],
        int(entry_id),
    )


class RedisAudit:
    """Mixed into :class:`~gateway.store.redis.store.RedisStore`: uses its client, keys, health,
    its account reads and ``find_records``."""

    client: SharedClient
    keys: Keys
    health: RedisHealth

    if TYPE_CHECKING:  # the store's own

        async def _account(self, account_id: int) -> Account | None: ...
        async def find_records(self, account_id: int, message_ids: list[str]) -> list[Record]: ...

    @functools.cached_property
    def _audit_scripts(self) -> tuple[Lua, Lua]:
        return Lua(self.client, _APPEND, write=True), Lua(self.client, _PAGE)

    @_guarded
    async def append_audit(self, entry: AuditEntry) -> None:
        await self._audit_scripts[0]((self.keys.audit_seq, self.keys.audit_log), (_encode(entry),))
        await self.client.xadd(
            self.keys.account_changes, {"key": entry.api_key}, maxlen=CHANGES_KEPT, approximate=True
        )

    @_guarded
    async def audit_page(self, page: int, per_page: int) -> AuditPage:
        first = (page - 1) * per_page
        total, rows = await self._audit_scripts[1]((self.keys.audit_log,), (first, first + per_page - 1))
        return AuditPage([_decode(row) for row in rows], int(total))

    @_guarded
    async def account_changes(self, cursor: str, wait: float) -> tuple[str, list[str]]:
        stream = self.keys.account_changes
        if not cursor:
            latest = cast(StreamEntries, await self.client.xrevrange(stream, count=1))
            return (latest[0][0].decode() if latest else "0-0"), []
        # Blocks well inside the call's bound (``redis.timeout``), so it never counts as an outage.
        block_ms = max(1, int(min(wait, self.health.timeout / 2) * 1000))
        reply = cast(
            "list[tuple[bytes, StreamEntries]] | None",
            await self.client.xread({stream: cursor}, count=1000, block=block_ms),
        )
        entries = [entry for _, found in reply or () for entry in found]
        if not entries:
            return cursor, []
        keys = [fields[b"key"].decode() for _, fields in entries if b"key" in fields]
        return entries[-1][0].decode(), keys

    @_guarded
    async def find_message(self, message_id: str) -> tuple[Account, Record] | None:
        ids = sorted(int(member) for member in await self.client.smembers(self.keys.accounts))
        if not ids:
            return None
        async with self.client.pipeline(transaction=False) as pipe:
            for account_id in ids:  # one key per command: they live in many slots
                pipe.hget(self.keys.messages(account_id), message_id)
            hits = await pipe.execute()
        owner = next((account_id for account_id, hit in zip(ids, hits, strict=True) if hit), None)
        account = await self._account(owner) if owner is not None else None
        found = await self.find_records(account.id, [message_id]) if account else []
        return (account, found[0]) if account and found else None
