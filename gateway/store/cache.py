"""An in-process cache of accounts and today's counts, in front of any store.

Every API request authenticates and account info reads today's count: served from memory, neither
costs a store round trip. This process's own writes are seen at once; account-service changes in
other processes at once on Redis, within 0.1 s on SQLite (``gateway.store.changes``); other
processes' sends within :data:`ACCOUNT_CACHE_TTL`. A read never puts an older state back over a newer
one. Secrets are checked on every request against the cached hash; an unknown key is never cached.
How current it is, store by store: (docs/accounts.md, "The account cache").
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.store.base import Account, AccountState, Store
from gateway.store.quotas import Period
from gateway.store.records import NewRecord, ReceiptsApplied, ReceiptUpdate, Settlement

__all__ = ["ACCOUNT_CACHE_TTL", "CachedStore"]

#: Seconds an account (or today's count) read from the store is trusted for changes made by
#: other processes. Part of the documented contract: keep ``docs/api.md`` and ``SECURITY.md`` in step.
ACCOUNT_CACHE_TTL = 1.0


class CachedStore:
    """``inner`` with ``account_by_key`` and ``today_sent`` served from memory (see the module)."""

    def __init__(
        self, inner: Store, ttl: float = ACCOUNT_CACHE_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.ttl = ttl
        self._clock = clock
        self._accounts: dict[str, tuple[Account, float]] = {}  # api_key -> (account, trusted until)
        self._days: dict[int, tuple[str, int, float]] = {}  # account id -> (day, sent, until)
        self._months: dict[int, tuple[str, int, float]] = {}  # account id -> (month, sent, until)
        self._keys: dict[int, str] = {}  # account id -> api_key (keys never change)
        self._tick = 0  # counts this process's changes, to spot a read that overlapped one
        self._changed: dict[int, int] = {}  # account id -> tick of its latest change
        self._all_changed = 0  # tick of the latest change to an account by key (see _forget_key)
        self._latest: dict[int, AccountState] = {}  # account id -> what its latest write left
        self._versions: dict[int, int] = {}  # account id -> version of the latest state applied
        self._shown_stale: set[int] = set()  # accounts to read again before showing their money
        watch = getattr(inner, "watch", None)
        self._reported = watch is not None
        if watch is not None:
            watch(self._apply)

    def __getattr__(self, name: str) -> Any:
        # Everything not cached is the inner store's, attributes included (``health``, ``path``).
        return getattr(self.inner, name)

    @property
    def max_parked_receipts(self) -> int:
        """The inner store's setting (both stores have it), readable and settable here."""
        return self.inner.max_parked_receipts  # type: ignore[attr-defined, no-any-return]  # not in Store

    @max_parked_receipts.setter
    def max_parked_receipts(self, value: int) -> None:
        self.inner.max_parked_receipts = value  # type: ignore[attr-defined]  # not in Store

    async def account_by_key(self, api_key: str) -> Account | None:
        now = self._clock()
        entry = self._accounts.get(api_key)
        if entry is not None and entry[1] > now:
            return entry[0]
        started = self._tick
        account = await self.inner.account_by_key(api_key)
        if account is None or self._all_changed > started:
            self._accounts.pop(api_key, None)
            return account
        if self._changed.get(account.id, 0) > started:
            # This process wrote to it during the read (a send, under load nearly always): the
            # money its writer reported last is newer than what the read saw, the rest is current.
            latest = self._latest.get(account.id)
            if latest is None:  # a store that reports nothing: the read may be older, keep none
                return account
            account = account.with_money(latest.balance_milli, latest.total_sent)
        self._accounts[api_key] = (account, now + self.ttl)
        self._keys[account.id] = api_key
        return account

    async def today_sent(self, account_id: int, day: str) -> int:
        return await self._count(self._days, account_id, day, self.inner.today_sent)

    async def month_sent(self, account_id: int, month: str) -> int:
        """The quota's count of the month (``Store.month_sent``): any write of this process to the
        account drops it (``_apply``), where a settle's report brings today's count along."""
        return await self._count(self._months, account_id, month, self.inner.month_sent)

    async def _count(
        self,
        kept: dict[int, tuple[str, int, float]],
        account_id: int,
        period: str,
        read: Callable[[int, str], Awaitable[int]],
    ) -> int:
        """A count of ``period`` (a day, a month) kept in ``kept``: from memory while trusted."""
        now = self._clock()
        entry = kept.get(account_id)
        if entry is not None and entry[0] == period and entry[2] > now:
            return entry[1]
        started = self._tick
        sent = await read(account_id, period)
        if self._unchanged_since(account_id, started):
            kept[account_id] = (period, sent, now + self.ttl)
            return sent
        newer = kept.get(account_id)  # a settle of this process counted during the read
        return newer[1] if newer is not None and newer[0] == period else sent

    async def reserve(
        self, account_id: int, records: list[NewRecord], now_ms: int, counted: Period | None = None
    ) -> bool:
        try:
            return await self.inner.reserve(account_id, records, now_ms, counted)
        finally:
            if not self._reported:
                self.forget(account_id)

    async def settle(
        self, account_id: int, results: list[Settlement], now_ms: int, day: str, counted: Period | None = None
    ) -> None:
        try:
            await self.inner.settle(account_id, results, now_ms, day, counted)
        finally:
            if not self._reported:
                self.forget(account_id)

    async def apply_receipts(
        self, provider: str, receipts: list[ReceiptUpdate], now_ms: int
    ) -> ReceiptsApplied:
        applied = await self.inner.apply_receipts(provider, receipts, now_ms)
        if applied.recounted:  # a carrier's count re-priced records (rare): balances moved
            self.forget_all()
        return applied

    async def give_up_receipts(
        self, provider: str, sent_before_ms: int, refund: bool, now_ms: int, limit: int
    ) -> int:
        given = await self.inner.give_up_receipts(provider, sent_before_ms, refund, now_ms, limit)
        if given and refund:  # refunds (rare): balances moved
            self.forget_all()
        return given

    async def update_account(self, api_key: str, **changes: object) -> Account | None:
        try:
            return await self.inner.update_account(api_key, **changes)
        finally:
            self._forget_key(api_key)

    async def top_up(self, api_key: str, amount_milli: int) -> Account | None:
        try:
            return await self.inner.top_up(api_key, amount_milli)
        finally:
            self._forget_key(api_key)

    async def apply_config_secret(
        self, api_key: str, expected: str | None, config_hash: str, secret_hash: str | None
    ) -> Account | None:
        try:
            return await self.inner.apply_config_secret(api_key, expected, config_hash, secret_hash)
        finally:
            self._forget_key(api_key)

    def forget(self, account_id: int) -> None:
        """Drop what is cached of an account: the next read goes to the store."""
        self._tick += 1
        self._changed[account_id] = self._tick
        self._latest.pop(account_id, None)
        self._days.pop(account_id, None)
        self._months.pop(account_id, None)
        key = self._keys.get(account_id)
        if key is not None:
            self._accounts.pop(key, None)

    def _forget_key(self, api_key: str) -> None:
        # A rare change (CLI, admin, rotation): any read in flight may predate it, keep none.
        self._tick += 1
        self._all_changed = self._tick
        self._accounts.pop(api_key, None)

    def forget_key(self, api_key: str) -> None:
        """Another process changed this account (``gateway.store.changes``): read it again."""
        self._forget_key(api_key)

    def forget_all(self) -> None:
        """Changes may have been missed (the store was out of reach): read every account again."""
        self._tick += 1
        self._all_changed = self._tick
        self._accounts.clear()
        self._days.clear()
        self._months.clear()

    def _unchanged_since(self, account_id: int, tick: int) -> bool:
        """No change of this process to the account since ``tick``: a read from then is current."""
        return self._changed.get(account_id, 0) <= tick and self._all_changed <= tick

    def _apply(self, state: AccountState) -> None:
        """A committed write of this process: make the cache say what it left (a state older than
        one applied already, by its ``version``, says nothing new)."""
        if state.version is not None:
            if state.version <= self._versions.get(state.account_id, 0):
                return
            self._versions[state.account_id] = state.version
            # A store other gateways write too (Redis): the money is exact as of this write, not of
            # theirs since. Good enough to authenticate with; read again before it is shown.
            self._shown_stale.add(state.account_id)
            self._days.pop(state.account_id, None)
        self._tick += 1
        self._changed[state.account_id] = self._tick
        self._latest[state.account_id] = state
        self._months.pop(state.account_id, None)
        key = self._keys.get(state.account_id)
        if key is not None and (entry := self._accounts.get(key)) is not None:
            account = entry[0].with_money(state.balance_milli, state.total_sent)
            self._accounts[key] = (account, entry[1])
        if state.day is not None and state.day_sent is not None:
            self._days[state.account_id] = (state.day, state.day_sent, self._clock() + self.ttl)

    async def current(self, account: Account) -> Account:
        """``account`` as the store holds it now, if this process's own writes to a store other
        gateways share may have left the cached money behind theirs: what is shown (account info)
        must not lag. Otherwise ``account`` itself: no read."""
        if account.id not in self._shown_stale:
            return account
        self._shown_stale.discard(account.id)
        return await self.inner.account_by_key(account.api_key) or account
