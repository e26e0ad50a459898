"""Quotas in the store, on every backend of the contract (SQLite; Redis standalone, Cluster,
Sentinel, Sentinel with replica-confirmed writes), behind the account cache and bare.

The check and the count are one step of the reserve: a reserve past a limit writes nothing and
says which limit; concurrent reserves never pass one together. A settle gives the carrier's
refusals back to the day and month their reserve counted them in, once.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.config.model import RedisConfig
from gateway.redis.client import redis_client
from gateway.store.base import Store
from gateway.store.quotas import Period, QuotaExceeded, counted_in
from gateway.store.records import RecordQuery
from gateway.store.redis.store import RedisStore
from tests import test_store_contract as contract
from tests.test_store_contract import NOW, accepted, new_account, new_records, refused

# The contract's backends, each behind the account cache and bare.
cached = contract.cached
store = contract.store

MARCH_1, MARCH_2, APRIL_1 = counted_in("2025-03-01"), counted_in("2025-03-02"), counted_in("2025-04-01")


async def created(store: Store, name: str, balance_milli: int = 10_000, **limits: int):
    return await store.create_account(new_account(name, balance_milli, **limits), NOW)


async def money(store: Store, name: str) -> int:
    account = await store.account_by_key(f"sk_{name}")
    assert account is not None
    return account.balance_milli


async def refused_for(store: Store, account_id: int, count: int, prefix: str, period: Period) -> str:
    with pytest.raises(QuotaExceeded) as refusal:
        await store.reserve(account_id, new_records(prefix, count), NOW, period)
    return refusal.value.period


async def test_a_reserve_past_a_limit_writes_nothing_and_names_the_limit(store: Store):
    account = await created(store, "daily", daily_limit=5, monthly_limit=8)
    assert (account.daily_limit, account.monthly_limit) == (5, 8)
    assert await store.reserve(account.id, new_records("a", 3), NOW, MARCH_1)
    # A batch that does not fit is refused whole (2 would fit, 3 do not).
    assert await refused_for(store, account.id, 3, "b", MARCH_1) == "daily"
    assert await money(store, "daily") == 10_000 - 3 * 50
    assert (await store.records(account.id, RecordQuery())).total == 3
    assert await store.month_sent(account.id, MARCH_1.month) == 3
    assert await store.reserve(account.id, new_records("c", 2), NOW, MARCH_1)  # exactly the limit
    assert await refused_for(store, account.id, 1, "d", MARCH_1) == "daily"
    assert await store.reserve(account.id, new_records("e", 3), NOW, MARCH_2)  # a new day: 8 this month
    # Past both: the monthly limit is named (waiting for the next day would not help).
    assert await refused_for(store, account.id, 3, "f", MARCH_2) == "monthly"
    assert await store.month_sent(account.id, MARCH_1.month) == 8
    assert await store.reserve(account.id, new_records("g", 5), NOW, APRIL_1)  # a new month
    assert await store.month_sent(account.id, APRIL_1.month) == 5
    assert await store.month_sent(account.id, MARCH_1.month) == 0  # only the month counted now is kept


async def test_a_short_balance_is_still_told_as_such(store: Store):
    account = await created(store, "poor", balance_milli=100, daily_limit=1)
    assert await store.reserve(account.id, new_records("a", 3), NOW, MARCH_1) is False
    assert await store.reserve(999, new_records("ghost", 1), NOW, MARCH_1) is False
    assert await store.month_sent(account.id, MARCH_1.month) == 0


async def test_refusals_are_given_back_once_to_the_period_their_reserve_counted_in(store: Store):
    account = await created(store, "giving", daily_limit=3)
    await store.reserve(account.id, new_records("a", 3), NOW, MARCH_1)
    results = [accepted("a-0"), refused("a-1"), refused("a-2")]
    for _ in range(2):  # a retried settle gives nothing back twice
        await store.settle(account.id, results, NOW, MARCH_1.day, MARCH_1)
    assert await store.month_sent(account.id, MARCH_1.month) == 1
    assert await store.reserve(account.id, new_records("b", 2), NOW, MARCH_1)
    assert await refused_for(store, account.id, 1, "c", MARCH_1) == "daily"
    # A settle after midnight gives a refusal back to the day its reserve counted in: not to the
    # next day, which counts anew.
    await store.reserve(account.id, new_records("d", 3), NOW, MARCH_2)
    await store.settle(account.id, [refused("b-0"), refused("b-1")], NOW, MARCH_2.day, MARCH_1)
    assert await refused_for(store, account.id, 1, "e", MARCH_2) == "daily"
    assert await store.month_sent(account.id, MARCH_1.month) == 1 + 3  # the month was still March's


async def test_a_reserve_naming_an_earlier_day_counts_in_the_later_one(store: Store):
    """A gateway whose clock is a moment behind at midnight must not start the new day's count again."""
    account = await created(store, "skewed", daily_limit=3)
    await store.reserve(account.id, new_records("a", 2), NOW, MARCH_2)
    assert await store.reserve(account.id, new_records("b", 1), NOW, MARCH_1)
    assert await refused_for(store, account.id, 1, "c", MARCH_2) == "daily"
    assert await refused_for(store, account.id, 1, "d", MARCH_1) == "daily"


async def test_without_a_period_a_reserve_is_neither_counted_nor_held(store: Store):
    account = await created(store, "internal", daily_limit=1)
    assert await store.reserve(account.id, new_records("a", 3), NOW)
    await store.settle(account.id, [refused("a-0")], NOW, MARCH_1.day)
    assert await store.month_sent(account.id, MARCH_1.month) == 0
    assert await store.reserve(account.id, new_records("b", 1), NOW, MARCH_1)


async def test_limits_changed_by_update_hold_the_next_reserve(store: Store):
    account = await created(store, "changed")
    assert (account.daily_limit, account.monthly_limit) == (None, None)
    await store.reserve(account.id, new_records("a", 4), NOW, MARCH_1)  # counted without a limit
    changed = await store.update_account("sk_changed", daily_limit=4, monthly_limit=100)
    assert changed is not None and (changed.daily_limit, changed.monthly_limit) == (4, 100)
    assert await refused_for(store, account.id, 1, "b", MARCH_1) == "daily"
    cleared = await store.update_account("sk_changed", daily_limit=None)
    assert cleared is not None and (cleared.daily_limit, cleared.monthly_limit) == (None, 100)
    assert await store.reserve(account.id, new_records("c", 1), NOW, MARCH_1)
    [listed] = await store.list_accounts()
    assert (listed.daily_limit, listed.monthly_limit) == (None, 100)


async def test_concurrent_reserves_never_pass_a_limit_together(store: Store):
    account = await created(store, "racing", daily_limit=10)

    async def one(n: int) -> bool:
        try:
            return await store.reserve(account.id, new_records(f"r{n}", 1), NOW + n, MARCH_1)
        except QuotaExceeded:
            return False

    outcomes = await asyncio.gather(*(one(n) for n in range(40)))
    assert outcomes.count(True) == 10
    assert await money(store, "racing") == 10_000 - 10 * 50
    assert await store.month_sent(account.id, MARCH_1.month) == 10


async def test_a_reserve_run_twice_after_a_lost_reply_counts_once(redis_server):
    """The Redis client retries a script once after a lost connection, which may follow a run."""
    client = redis_client(RedisConfig(url=redis_server.url))
    redis = RedisStore(client, "twice:")
    try:
        account = await redis.create_account(new_account("twice", daily_limit=2), NOW)
        records = new_records("m", 2)
        assert await redis.reserve(account.id, records, NOW, MARCH_1)
        assert await redis.reserve(account.id, records, NOW, MARCH_1)  # the retry: already reserved
        assert await redis.month_sent(account.id, MARCH_1.month) == 2
    finally:
        await client.aclose()
