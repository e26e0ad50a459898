"""The account cache in front of every store (``gateway.store.cache``).

This process's own changes show at once; another process's (a second store on the same file
stands in for a CLI run or another worker) within ``ACCOUNT_CACHE_TTL``, never later; a read that
overlapped a change is not kept; the secret is checked on every request, warm cache or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.accounts.credentials import hash_secret
from gateway.keys import STORE
from gateway.store.base import Account, AccountState, NewAccount
from gateway.store.cache import ACCOUNT_CACHE_TTL, CachedStore
from gateway.store.records import NewRecord, Settlement
from gateway.store.sqlite.store import SQLiteStore
from tests.conftest import SEND_BODY

NOW = 1_714_521_600_000
DAY = "2024-05-01"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """Counts the reads that reach the store behind the cache; ``report=False`` hides ``watch``
    (a store that does not tell what its writes left: both shipped stores now do)."""

    watch = None

    def __init__(self, inner: SQLiteStore, *, report: bool = True) -> None:
        self.inner, self.reads = inner, 0
        if report:
            self.watch = inner.watch

    async def account_by_key(self, api_key: str) -> Account | None:
        self.reads += 1
        return await self.inner.account_by_key(api_key)

    async def today_sent(self, account_id: int, day: str) -> int:
        self.reads += 1
        return await self.inner.today_sent(account_id, day)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[CachedStore, Counting, SQLiteStore, Clock]]:
    """The cached store of "this process", what reaches its store, and "another process"'s."""
    path = str(tmp_path / "cache.db")
    ours, theirs = SQLiteStore(path, timeout=1.0), SQLiteStore(path, timeout=1.0)
    await ours.open()
    await theirs.open()
    counting, clock = Counting(ours), Clock()
    cached = CachedStore(counting, clock=clock)  # type: ignore[arg-type]
    try:
        yield cached, counting, theirs, clock
    finally:
        await ours.close()
        await theirs.close()


async def new_account(store: CachedStore, name: str = "shop", balance_milli: int = 1000) -> Account:
    return await store.create_account(
        NewAccount(
            name=name,
            api_key=f"sk_{name}",
            secret_hash=hash_secret("right"),
            balance_milli=balance_milli,
            verification_status="approved",
        ),
        NOW,
    )


async def test_reads_are_served_from_memory_until_the_ttl(stores):
    cached, counting, _, clock = stores
    account = await new_account(cached)
    for _ in range(5):
        assert await cached.account_by_key("sk_shop") == account
        assert await cached.today_sent(account.id, DAY) == 0
    assert counting.reads == 2
    clock.now += ACCOUNT_CACHE_TTL
    await cached.account_by_key("sk_shop")
    await cached.today_sent(account.id, DAY)
    assert counting.reads == 4
    assert await cached.account_by_key("sk_nobody") is None
    assert await cached.account_by_key("sk_nobody") is None
    assert counting.reads == 6  # an unknown key is never cached


async def test_own_sends_keep_balance_and_counts_exact_without_a_read(stores):
    cached, counting, _, _ = stores
    account = await new_account(cached)
    await cached.account_by_key("sk_shop")
    await cached.today_sent(account.id, DAY)
    records = [NewRecord(f"m{i}", "138****8000", "t", "mock", 70) for i in range(3)]
    assert await cached.reserve(account.id, records, NOW)
    assert (await cached.account_by_key("sk_shop")).balance_milli == 1000 - 210
    await cached.settle(
        account.id,
        [
            Settlement("m0", "success", "mock", 50),
            Settlement("m1", "pending", "mock", 50),
            Settlement("m2", "failed", "mock", 0, error="refused"),
        ],
        NOW,
        DAY,
    )
    after = await cached.account_by_key("sk_shop")
    assert (after.balance_milli, after.total_sent) == (1000 - 100, 2)
    assert await cached.today_sent(account.id, DAY) == 2
    assert counting.reads == 2  # the writer told the cache; nothing was read again
    assert after == await counting.inner.account_by_key("sk_shop")  # and it is what is stored


@pytest.mark.parametrize(
    "change", [{"disabled": True}, {"secret_hash": "rotated"}, {"verification_status": "pending"}]
)
async def test_a_change_through_this_process_shows_at_once(stores, change):
    cached, _, _, _ = stores
    await new_account(cached)
    await cached.account_by_key("sk_shop")
    await cached.update_account("sk_shop", **change)
    seen = await cached.account_by_key("sk_shop")
    assert {key: getattr(seen, key) for key in change} == change
    await cached.top_up("sk_shop", 500)
    assert (await cached.account_by_key("sk_shop")).balance_milli == 1500


async def test_another_process_s_change_shows_within_the_ttl(stores):
    cached, _, theirs, clock = stores
    account = await new_account(cached)
    await cached.account_by_key("sk_shop")
    await cached.today_sent(account.id, DAY)
    await theirs.update_account("sk_shop", disabled=True, secret_hash="rotated")
    await theirs.reserve(account.id, [NewRecord("x", "138****8000", "t", "mock", 100)], NOW)
    await theirs.settle(account.id, [Settlement("x", "success", "mock", 100)], NOW, DAY)
    clock.now += ACCOUNT_CACHE_TTL - 0.01  # still trusted: the documented staleness
    assert not (await cached.account_by_key("sk_shop")).disabled
    clock.now += 0.01
    seen = await cached.account_by_key("sk_shop")
    assert (seen.disabled, seen.secret_hash, seen.balance_milli) == (True, "rotated", 900)
    assert await cached.today_sent(account.id, DAY) == 1


async def test_a_read_that_overlapped_a_change_is_not_kept(stores):
    cached, counting, _, _ = stores
    await new_account(cached)
    release = asyncio.Event()
    read = counting.account_by_key

    async def slow_read(api_key: str) -> Account | None:
        found = await read(api_key)  # the state before the change below
        await release.wait()
        return found

    counting.account_by_key = slow_read  # type: ignore[method-assign]
    stale = asyncio.create_task(cached.account_by_key("sk_shop"))
    await asyncio.sleep(0.05)
    counting.account_by_key = read  # type: ignore[method-assign]
    await cached.update_account("sk_shop", disabled=True)
    release.set()
    assert not (await stale).disabled  # answered with what it read, but not kept:
    assert (await cached.account_by_key("sk_shop")).disabled


async def test_a_read_that_overlapped_own_sends_is_kept_with_their_money(stores):
    """Under steady sending every read overlaps a write: the read is kept, with the newer money."""
    cached, counting, _, _ = stores
    account = await new_account(cached)
    release = asyncio.Event()
    read = counting.account_by_key

    async def slow_read(api_key: str) -> Account | None:
        found = await read(api_key)
        await release.wait()
        return found

    counting.account_by_key = slow_read  # type: ignore[method-assign]
    filling = asyncio.create_task(cached.account_by_key("sk_shop"))
    await asyncio.sleep(0.05)
    assert await cached.reserve(account.id, [NewRecord("m", "138****8000", "t", "mock", 70)], NOW)
    release.set()
    assert (await filling).balance_milli == 930
    counting.account_by_key = read  # type: ignore[method-assign]
    reads = counting.reads
    assert (await cached.account_by_key("sk_shop")).balance_milli == 930
    assert counting.reads == reads  # kept


async def test_a_store_that_reports_nothing_is_read_again_after_its_writes(stores):
    cached, counting, _, _ = stores
    account = await new_account(cached)
    quiet = Counting(counting.inner, report=False)
    silent = CachedStore(quiet)  # type: ignore[arg-type]
    await silent.account_by_key("sk_shop")
    await silent.account_by_key("sk_shop")
    assert quiet.reads == 1
    assert await silent.reserve(account.id, [NewRecord("m", "138****8000", "t", "mock", 70)], NOW)
    assert (await silent.account_by_key("sk_shop")).balance_milli == 930
    assert quiet.reads == 2


async def test_a_warm_cache_never_lets_a_wrong_secret_in(make_client, add_account_with_secret):
    client = await make_client()
    headers = await add_account_with_secret(client)
    assert (await client.get("/api/account/info", headers=headers)).status == 200
    for wrong in ("wrong", headers["X-API-Secret"] + "x", headers["X-API-Secret"][:-1]):
        refused = await client.get("/api/account/info", headers={**headers, "X-API-Secret": wrong})
        assert refused.status == 401
    store = client.app[STORE]
    await store.update_account(headers["X-API-Key"], secret_hash=hash_secret("rotated"))
    assert (await client.get("/api/account/info", headers=headers)).status == 401  # at once
    rotated = {**headers, "X-API-Secret": "rotated"}
    assert (await client.get("/api/account/info", headers=rotated)).status == 200


async def test_a_disabled_account_is_refused_within_the_bound(make_client, add_account_with_secret):
    client = await make_client()
    headers = await add_account_with_secret(client)
    assert (await client.post("/api/sms/send", json=SEND_BODY, headers=headers)).status == 200
    other = SQLiteStore(client.app[STORE].path, timeout=1.0)  # another worker on the same file
    await other.open()
    try:
        await other.update_account(headers["X-API-Key"], disabled=True)
    finally:
        await other.close()
    loop = asyncio.get_running_loop()
    start = loop.time()
    while (await client.get("/api/account/info", headers=headers)).status != 403:
        assert loop.time() - start <= ACCOUNT_CACHE_TTL + 0.5
        await asyncio.sleep(0.02)
    refused = await client.post("/api/sms/send", json=SEND_BODY, headers=headers)
    assert (await refused.json())["code"] == "ACCOUNT_DISABLED"


@pytest.fixture
def add_account_with_secret():
    async def add(client) -> dict[str, str]:
        store = client.app[STORE]
        account = await store.create_account(
            NewAccount(
                name="cached",
                api_key="sk_cached_000000000000",
                secret_hash=hash_secret("s3cret-cached"),
                balance_milli=10_000,
                verification_status="approved",
            ),
            NOW,
        )
        return {"X-API-Key": account.api_key, "X-API-Secret": "s3cret-cached"}

    return add


class OutOfOrder:
    """A store whose writes report what they left in any order, as Redis replies read on several
    connections may arrive: each state carries the account's count of writes."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.tell = None

    def watch(self, listener) -> None:
        self.tell = listener

    async def account_by_key(self, api_key: str) -> Account | None:
        return self.account


async def test_an_older_report_arriving_late_does_not_undo_a_newer_one():
    account = Account(7, "shop", "sk_shop", "h", 1000, "approved", False, (), None, None, 0)
    inner = OutOfOrder(account)
    cached = CachedStore(inner, clock=Clock())  # type: ignore[arg-type]
    await cached.account_by_key("sk_shop")
    inner.tell(AccountState(7, 880, 2, version=4))  # the settle, read first
    inner.tell(AccountState(7, 930, 1, version=3))  # the reserve before it, read late
    kept = await cached.account_by_key("sk_shop")
    assert (kept.balance_milli, kept.total_sent) == (880, 2)
    inner.tell(AccountState(7, 830, 3, version=5))
    assert (await cached.account_by_key("sk_shop")).balance_milli == 830
