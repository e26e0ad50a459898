"""The Redis store: the same contract as the SQLite one, shared by every gateway instance.

Money moves only inside Lua scripts (``redis/scripts``), so any number of instances sending at once
can never overdraw an account. Every operation takes at most ``redis.timeout`` and every failure is
:class:`StoreUnavailable` (503); an outage is shared with the limiter (``gateway.redis.health``).
With ``redis.wait_replicas`` an unconfirmed write is a 503 and undone where a retry would double it.
Details: (docs/stores.md, "Redis"; docs/deployment.md, "When Redis is gone").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import cast

from redis.typing import EncodableT

from gateway.redis.client import Lua, SharedClient
from gateway.redis.health import RedisHealth, guarded
from gateway.redis.replicas import NotReplicated
from gateway.store.base import Account, AccountState, NewAccount, StoreUnavailable, check_updatable
from gateway.store.quotas import Period, QuotaExceeded
from gateway.store.records import (
    MAX_PARKED_RECEIPTS,
    STATUSES,
    NewRecord,
    ReceiptsApplied,
    ReceiptUpdate,
    Settlement,
)
from gateway.store.redis import accounts
from gateway.store.redis.accounts import ConfigSecrets
from gateway.store.redis.audit import RedisAudit
from gateway.store.redis.billing import RedisBilling
from gateway.store.redis.idempotency import RedisIdempotency
from gateway.store.redis.keys import Hash, Keys, decode_account, reserve_values, settle_values
from gateway.store.redis.outbox import RedisOutbox
from gateway.store.redis.quotas import RedisQuotas, period_values
from gateway.store.redis.receipts import Receipts
from gateway.store.redis.record_reads import RecordReads
from gateway.store.redis.scripts import FIND_RECORDS, PROBE_WRITE, RECORDS, RESERVE, SETTLE, TOP_UP

__all__ = ["RedisStore"]

_OPERATION_TTL_MS = 60_000  # longer than any retry of one command
_NOT_REPLICATED = "NOT_REPLICATED: not sent, the store's replicas did not confirm the reserve"
_MAX_REMEMBERED_IDS = 100_000  # API keys whose account id is remembered (then forgotten at once)


# Every way Redis can fail (unreachable, timed out, read-only, out of memory) is a 503.
_guarded = guarded(StoreUnavailable)


class RedisStore(
    RedisAudit, RedisIdempotency, ConfigSecrets, RedisOutbox, RedisBilling, RedisQuotas, RecordReads
):
    """The store on Redis; the audit log and account changes are :class:`RedisAudit`'s, the
    Idempotency-Key claims :class:`RedisIdempotency`'s, the config's secrets
    :class:`~gateway.store.redis.accounts.ConfigSecrets`', the callback outbox :class:`RedisOutbox`'s,
    billing's (the status pull, give-up, leases, usage) :class:`RedisBilling`'s, the counts
    :class:`RedisQuotas`', record pages :class:`RecordReads`'."""

    def __init__(
        self, client: SharedClient, key_prefix: str, *, max_parked_receipts: int = MAX_PARKED_RECEIPTS
    ) -> None:
        """A store on ``client``, which its owner (the app, the CLI) opens and closes."""
        self.client = client
        #: The client's: an outage the rate limiter met is one here too.
        self.health: RedisHealth = client.health
        #: At most this many receipts naming no record yet are kept (see ``redis/receipts``).
        self.max_parked_receipts = max_parked_receipts
        self.keys = Keys(key_prefix)
        # API key → account id, as found: a key never moves to another account (it is not
        # updatable), and each read checks the account still holds it, so an entry made stale
        # (the data flushed, a failed creation undone) costs only the lookup it saves.
        self._ids: dict[str, int] = {}
        self._listener: Callable[[AccountState], None] | None = None
        self._reserve = Lua(client, RESERVE, write=True)
        self._settle = Lua(client, SETTLE, write=True)
        # Undoing a write its replicas did not confirm: not confirmed in turn (no time is left for
        # it); a replica that gets the undoing has the write before it, the log being ordered.
        self._refund = Lua(client, SETTLE)
        self._take_back = Lua(client, TOP_UP)
        self._probe = Lua(client, PROBE_WRITE, write=True)
        self._records = Lua(client, RECORDS)
        self._find_records = Lua(client, FIND_RECORDS)
        self._top_up = Lua(client, TOP_UP, write=True)
        self._receipts = Receipts(client, self.keys)
        self._outbox_scripts()
        self._billing_scripts()

    def watch(self, listener: Callable[[AccountState], None]) -> None:
        """Have ``listener`` told what each reserve and settle of this process left the account at
        (``gateway.store.cache`` keeps itself current by it). Replies may arrive out of order (the
        client pipelines on several connections): ``AccountState.version`` orders them."""
        self._listener = listener

    def _report(self, state: AccountState) -> None:
        if self._listener is not None:
            self._listener(state)

    async def open(self) -> None:
        """Nothing to open: scripts go by digest and are loaded on first use."""

    async def close(self) -> None:
        """Nothing to close: the client is its owner's."""

    @_guarded
    async def ping(self) -> None:
        await self.client.ping()

    @_guarded
    async def probe_write(self, now_ms: int) -> None:
        """A real write: refused when Redis is out of memory or cannot persist (MISCONF), or
        (``redis.wait_replicas``) when the replicas do not confirm it, as they would not a send."""
        await self._probe((self.keys.readiness_probe,), (now_ms,))

    # accounts

    @_guarded
    async def create_account(self, account: NewAccount, now_ms: int) -> Account:
        account_id = await accounts.create_account(self.client, self.keys, account, now_ms)
        return decode_account(cast(Hash, await self.client.hgetall(self.keys.account(account_id))))

    async def _account(self, account_id: int) -> Account | None:
        data = await self.client.batch("HGETALL", self.keys.account(account_id))
        return decode_account(data) if data else None

    async def _id(self, api_key: str) -> int | None:
        found = await self.client.batch("GET", self.keys.by_key(api_key))
        return int(found) if found is not None else None

    @_guarded
    async def account_by_key(self, api_key: str) -> Account | None:
        """One round trip for a key seen before (the account's hash), two the first time."""
        account_id = self._ids.get(api_key)
        if account_id is not None:
            data = await self.client.batch("HGETALL", self.keys.account(account_id))
            if data.get(b"api_key") == api_key.encode():
                return decode_account(data)
            self._ids.pop(api_key, None)  # another call may have dropped it already
        account_id = await self._id(api_key)
        if account_id is None:
            return None
        account = await self._account(account_id)
        if account is not None and account.api_key == api_key:
            if len(self._ids) >= _MAX_REMEMBERED_IDS:
                self._ids.clear()
            self._ids[api_key] = account_id
        return account

    async def _account_ids(self) -> list[int]:
        return sorted(int(member) for member in await self.client.smembers(self.keys.accounts))

    @_guarded
    async def list_accounts(self) -> list[Account]:
        ids = await self._account_ids()
        async with self.client.pipeline(transaction=False) as pipe:
            for account_id in ids:
                pipe.hgetall(self.keys.account(account_id))
            rows = await pipe.execute()
        return [decode_account(row) for row in rows if row]

    @_guarded  # takes ``self`` positional-only, which ``**changes`` must leave it (the ``/``)
    async def update_account(self, /, api_key: str, **changes: object) -> Account | None:
        check_updatable(changes)
        account_id = await self._id(api_key)
        if account_id is None:
            return None
        await accounts.update_account(self.client, self.keys, account_id, changes)
        return await self._account(account_id)

    @_guarded
    async def top_up(self, api_key: str, amount_milli: int) -> Account | None:
        account_id = await self._id(api_key)
        if account_id is None:
            return None
        credited = await self._credit(account_id, int(amount_milli))
        account = await self._account(account_id)
        if not isinstance(credited, bytes) or account is None:
            return None
        # The balance this credit set: the account read after it may already hold later ones.
        return account.with_money(int(credited), account.total_sent)

    async def _credit(self, account_id: int, amount_milli: int) -> object:
        """TOP_UP's reply; a credit the replicas did not confirm is taken back before it raises."""
        account = self.keys.account(account_id)
        try:
            return await self._top_up(
                (account, self.keys.operation(account_id, uuid.uuid4().hex)),
                (amount_milli, _OPERATION_TTL_MS),
            )
        except NotReplicated as exc:
            if isinstance(exc.reply, bytes):  # credited on the primary: a retry would credit twice
                await self._take_back(
                    (account, self.keys.operation(account_id, uuid.uuid4().hex)),
                    (-amount_milli, _OPERATION_TTL_MS),
                )
            raise

    # sending

    @_guarded
    async def reserve(
        self, account_id: int, records: list[NewRecord], now_ms: int, counted: Period | None = None
    ) -> bool:
        keys = self.keys
        args: list[EncodableT] = [keys.record_base(account_id), now_ms, *period_values(counted)]
        for r in records:
            args += reserve_values(r)
        try:
            reserved = await self._reserve(
                (
                    keys.account(account_id),
                    keys.messages(account_id),
                    keys.records(account_id),
                    keys.records(account_id, "pending"),
                    keys.quota(account_id),
                ),
                args,
            )
        except NotReplicated as exc:
            if isinstance(exc.reply, list):  # reserved on the primary: refunded there before anything is sent
                refunds = [
                    Settlement(
                        r.message_id, "failed", r.provider, 0, error=_NOT_REPLICATED, segments=r.segments
                    )
                    for r in records
                ]
                await self._settled(
                    account_id, refunds, now_ms, "", self._refund, counted
                )  # "": none counted
            raise
        if isinstance(reserved, bytes):  # the limit it would pass
            raise QuotaExceeded(reserved.decode())
        if not reserved:
            return False
        _, balance, total_sent, writes = reserved
        self._report(AccountState(account_id, balance, total_sent, version=writes))
        return True

    @_guarded
    async def settle(
        self, account_id: int, results: list[Settlement], now_ms: int, day: str, counted: Period | None = None
    ) -> None:
        await self._settled(account_id, results, now_ms, day, self._settle, counted)

    async def _settled(
        self,
        account_id: int,
        results: list[Settlement],
        now_ms: int,
        day: str,
        script: Lua,
        counted: Period | None,
    ) -> None:
        if not results:
            return
        keys = self.keys
        args: list[EncodableT] = [keys.record_base(account_id), now_ms, day, *period_values(counted)]
        for s in results:
            if s.status not in STATUSES:
                raise ValueError(f"unknown status {s.status!r}")
            args += settle_values(s)
        waiting, balance, total_sent, writes = await script(
            (
                keys.account(account_id),
                keys.messages(account_id),
                *(keys.records(account_id, status) for status in STATUSES),
                keys.daily(account_id),
                keys.quota(account_id),
            ),
            args,
        )
        # No day's count: other gateways count the day too, so the cache reads it (``CachedStore``).
        self._report(AccountState(account_id, balance, total_sent, version=writes))
        by_message = {s.message_id: s for s in results}
        linked = [
            (by_message[mid.decode()], int(record_id), phone_hash.decode())
            for mid, record_id, phone_hash in waiting
            if by_message[mid.decode()].carrier_id
        ]
        if linked:
            await self._receipts.link(account_id, linked, now_ms)

    @_guarded
    async def apply_receipts(
        self, provider: str, receipts: list[ReceiptUpdate], now_ms: int
    ) -> ReceiptsApplied:
        if not receipts:
            return ReceiptsApplied(0, [])
        return await self._receipts.apply(provider, receipts, now_ms, self.max_parked_receipts)
