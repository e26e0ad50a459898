"""Billing's part of the store contract (issue 26), run unchanged against every backend.

What a record is billed as (segments, refunds), the records awaiting a receipt that the status pull
asks about, re-pricing by a receipt's count, giving up on receipts, leases and usage: the same on
SQLite and on Redis in each mode. Balances are read past the account cache, whose 1 s view of
changes made outside reserve and settle is its own contract (``gateway.store.cache``). Redis's
own mechanics (its keys, a script run twice) are at the end.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from gateway.config.model import RedisConfig
from gateway.redis.client import redis_client
from gateway.store.base import Store
from gateway.store.billing import NO_RECEIPT_ERROR, USAGE_BUCKET_MS, Awaiting, UsageBucket
from gateway.store.records import NewRecord, ReceiptUpdate, Record, RecordQuery, Settlement
from gateway.store.redis.store import RedisStore
from tests import test_store_contract as contract
from tests.test_store_contract import DAY, HOOK, LEASE, NOW, events, new_account

# The contract's backends, each behind the account cache and bare.
cached = contract.cached
store = contract.store

PULL_AT = NOW + 60_000


def record(mid: str, price_milli: int = 100, segments: int = 2, url: str | None = None) -> NewRecord:
    return NewRecord(mid, "138****8000", "123456", "aliyun", price_milli, f"hash-{mid}", url, segments)


def waiting(
    mid: str,
    price_milli: int = 100,
    segments: int = 2,
    *,
    sealed: bool = True,
    pull_at_ms: int = PULL_AT,
    carrier_counted: bool = False,
) -> Settlement:
    """Accepted by a carrier with receipts: pending, its number sealed, a pull due at PULL_AT."""
    sealed_phone = f"sealed-{mid}" if sealed else None
    return Settlement(
        mid,
        "pending",
        "aliyun",
        price_milli,
        f"biz-{mid}",
        None,
        segments,
        sealed_phone,
        pull_at_ms,
        carrier_counted,
    )


def receipt(mid: str, segments: int | None = None, delivered: bool = True) -> ReceiptUpdate:
    return ReceiptUpdate(
        f"biz-{mid}", f"hash-{mid}", delivered, None if delivered else "UNDELIV: x", segments
    )


async def money(store: Store, name: str) -> int:
    """The balance as the store holds it now (not the cache's view)."""
    account = await getattr(store, "inner", store).account_by_key(f"sk_{name}")
    assert account is not None
    return int(account.balance_milli)


async def one(store: Store, account_id: int, mid: str) -> Record:
    [found] = await store.find_records(account_id, [mid])
    return found


async def sent(store: Store, name: str, *mids: str, balance: int = 1000, url: str | None = None) -> int:
    """An account that reserved a record per message id (100 for 2 segments each) at NOW."""
    account = await store.create_account(new_account(name, balance), NOW)
    assert await store.reserve(account.id, [record(mid, url=url) for mid in mids], NOW)
    return account.id


def pulled_ids(found: list[Awaiting]) -> list[tuple[int, str, str, str, int]]:
    return [(a.account_id, a.carrier_id, a.sealed_phone, a.message_id, a.created_ms) for a in found]


# -- what a record is billed as ------------------------------------------------------------------


async def test_segments_are_kept_at_reserve_and_at_settle(store: Store):
    account_id = await sent(store, "segs", "a", "b", url=HOOK)
    await store.reserve(account_id, [NewRecord("plain", "138****8000", "1", "aliyun", 50)], NOW)
    assert [(r.message_id, r.segments) for r in await store.find_records(account_id, ["a", "plain"])] == [
        ("a", 2),
        ("plain", 1),
    ]
    counted = Settlement("a", "success", "aliyun", 150, "biz-a", None, 3, carrier_counted=True)
    await store.settle(
        account_id, [counted, Settlement("b", "success", "aliyun", 100, "biz-b", None, 2)], NOW, DAY
    )
    a, b = await store.find_records(account_id, ["a", "b"])
    assert (a.segments, a.price_milli, a.refunded_milli, a.no_receipt) == (3, 150, 0, False)
    assert (b.segments, b.price_milli, b.refunded_milli) == (2, 100, 0)
    assert await money(store, "segs") == 1000 - 200 - 50 - 50  # a: 50 more than reserved
    claimed = await store.claim_callbacks(NOW + 1, LEASE, 10, "t")
    facts = {event.message_id: json.loads(event.facts) for event in claimed}
    assert {mid: (f["segments"], f["price_milli"]) for mid, f in facts.items()} == {
        "a": (3, 150),
        "b": (2, 100),
    }


async def test_a_refusal_keeps_what_was_reserved_as_refunded(store: Store):
    account_id = await sent(store, "refused", "r", "ok")
    refusal = Settlement("r", "failed", "aliyun", 0, None, "isv.BUSINESS_LIMIT: x", 2)
    await store.settle(account_id, [refusal, Settlement("ok", "success", "aliyun", 100, "biz-ok")], NOW, DAY)
    r, ok = await store.find_records(account_id, ["r", "ok"])
    assert (r.status, r.price_milli, r.refunded_milli) == ("failed", 0, 100)
    assert (ok.status, ok.price_milli, ok.refunded_milli) == ("success", 100, 0)
    assert await money(store, "refused") == 900


# -- records awaiting their receipt ----------------------------------------------------------------


async def test_a_record_awaiting_its_receipt_is_due_for_a_pull_at_its_time_and_not_before(store: Store):
    first = await sent(store, "early", "e1", "unsealed")
    second = await sent(store, "later", "l1")
    await store.settle(
        first, [waiting("e1", pull_at_ms=PULL_AT + 5), waiting("unsealed", sealed=False)], NOW, DAY
    )
    await store.settle(second, [waiting("l1")], NOW, DAY)
    assert await store.awaiting_receipts("aliyun", PULL_AT - 1, 10) == []
    assert pulled_ids(await store.awaiting_receipts("aliyun", PULL_AT, 10)) == [
        (second, "biz-l1", "sealed-l1", "l1", NOW)
    ]
    # The earliest due first, across accounts; one with no sealed number is never pulled.
    due = await store.awaiting_receipts("aliyun", PULL_AT + 5, 10)
    assert [a.message_id for a in due] == ["l1", "e1"]
    assert [a.message_id for a in await store.awaiting_receipts("aliyun", PULL_AT + 5, 1)] == ["l1"]
    assert await store.awaiting_receipts("tencent", PULL_AT + 5, 10) == []
    assert (await one(store, first, "e1")).status == "pending"


async def test_pulled_records_wait_for_their_next_pull_and_a_receipt_ends_the_wait(store: Store):
    account_id = await sent(store, "pull", "p1", "p2")
    await store.settle(account_id, [waiting("p1"), waiting("p2")], NOW, DAY)
    asked = await store.awaiting_receipts("aliyun", PULL_AT, 10)
    assert sorted(a.message_id for a in asked) == ["p1", "p2"]
    applied = await store.apply_receipts("aliyun", [receipt("p2")], PULL_AT + 1)  # came meanwhile
    assert applied.changed == 1
    await store.pulled("aliyun", asked, PULL_AT + 30_000)
    assert await store.awaiting_receipts("aliyun", PULL_AT + 29_999, 10) == []
    assert [a.message_id for a in await store.awaiting_receipts("aliyun", PULL_AT + 30_000, 10)] == ["p1"]
    assert (await one(store, account_id, "p2")).status == "success"
    # A finalised record is never given up on either.
    assert await store.give_up_receipts("aliyun", NOW + 1, False, PULL_AT + 2, 10) == 1
    assert [r.no_receipt for r in await store.find_records(account_id, ["p1", "p2"])] == [True, False]


# -- a receipt's count ---------------------------------------------------------------------------


async def test_a_receipt_s_count_reprices_a_record_once(store: Store):
    account_id = await sent(store, "count", "up", "down", url=HOOK)
    await store.settle(account_id, [waiting("up"), waiting("down")], NOW, DAY)
    assert await money(store, "count") == 800
    twice = [receipt("up", 3), receipt("up", 3), receipt("down", 1, delivered=False)]
    applied = await store.apply_receipts("aliyun", twice, NOW + 5)
    assert (applied.changed, sorted(applied.recounted)) == (2, [(2, 1), (2, 3)])
    assert await money(store, "count") == 800 - 50 + 50
    again = await store.apply_receipts("aliyun", [receipt("up", 4), receipt("down", 4)], NOW + 6)
    assert again == (0, [])
    up, down = await store.find_records(account_id, ["up", "down"])
    assert [(r.status, r.segments, r.price_milli) for r in (up, down)] == [
        ("success", 3, 150),
        ("failed", 1, 50),
    ]
    assert await money(store, "count") == 800
    # The receipt's event carries the price it re-priced to.
    for event in await store.claim_callbacks(NOW + 7, LEASE, 10, "t1"):
        await store.finish_callbacks("t1", [(event.event_id, "delivered", None, None)], NOW + 7)
    finals = {
        e.message_id: json.loads(e.facts) for e in await store.claim_callbacks(NOW + 8, LEASE, 10, "t2")
    }
    assert {mid: (f["segments"], f["price_milli"]) for mid, f in finals.items()} == {
        "up": (3, 150),
        "down": (1, 50),
    }


async def test_a_record_the_carrier_counted_is_not_repriced(store: Store):
    account_id = await sent(store, "counted", "c")
    await store.settle(account_id, [waiting("c", carrier_counted=True)], NOW, DAY)
    applied = await store.apply_receipts("aliyun", [receipt("c", 5)], NOW + 5)
    assert applied == (1, [])
    found = await one(store, account_id, "c")
    assert (found.status, found.segments, found.price_milli) == ("success", 2, 100)
    assert await money(store, "counted") == 900


async def test_repricing_charges_at_most_the_balance(store: Store):
    account_id = await sent(store, "short", "s", balance=120)
    await store.settle(account_id, [waiting("s")], NOW, DAY)
    applied = await store.apply_receipts("aliyun", [receipt("s", 4)], NOW + 5)  # owes 100, has 20
    assert applied == (1, [(2, 4)])
    assert await money(store, "short") == 0
    found = await one(store, account_id, "s")
    assert (found.segments, found.price_milli) == (4, 120)


# -- giving up on receipts -------------------------------------------------------------------------


async def test_giving_up_marks_the_records_and_keeps_their_charge(store: Store):
    account_id = await sent(store, "keep", "old", url=HOOK)
    await store.reserve(account_id, [record("young", url=HOOK)], NOW + 10)
    await store.settle(account_id, [waiting("old"), waiting("young")], NOW + 10, DAY)
    assert await store.give_up_receipts("aliyun", NOW + 5, False, NOW + 20, 10) == 1
    assert await store.give_up_receipts("aliyun", NOW + 5, False, NOW + 21, 10) == 0  # once
    old, young = await store.find_records(account_id, ["old", "young"])
    assert (old.status, old.no_receipt, old.price_milli, old.refunded_milli) == ("pending", True, 100, 0)
    assert (young.status, young.no_receipt) == ("pending", False)
    assert await money(store, "keep") == 800
    assert [a.message_id for a in await store.awaiting_receipts("aliyun", PULL_AT, 10)] == ["young"]
    for event in await store.claim_callbacks(NOW + 30, LEASE, 10, "t1"):
        await store.finish_callbacks("t1", [(event.event_id, "delivered", None, None)], NOW + 30)
    assert events(await store.claim_callbacks(NOW + 31, LEASE, 10, "t2")) == [("old", 2, "no_receipt")]


async def test_giving_up_with_refund_fails_and_refunds_the_records(store: Store):
    first = await sent(store, "refund", "f1", "f2", url=HOOK)
    second = await sent(store, "other", "o1")
    await store.settle(first, [waiting("f1"), waiting("f2", price_milli=150, segments=3)], NOW, DAY)
    await store.settle(second, [waiting("o1")], NOW, DAY)
    assert await money(store, "refund") == 750
    assert await store.give_up_receipts("aliyun", NOW + 1, True, NOW + 20, 2) == 2  # at most the limit
    assert await store.give_up_receipts("aliyun", NOW + 1, True, NOW + 21, 2) == 1
    assert (await money(store, "refund"), await money(store, "other")) == (1000, 1000)
    for account_id, mid, price in ((first, "f1", 100), (first, "f2", 150), (second, "o1", 100)):
        found = await one(store, account_id, mid)
        assert (found.status, found.error, found.no_receipt) == ("failed", NO_RECEIPT_ERROR, True)
        assert (found.price_milli, found.refunded_milli) == (0, price)
    assert (await store.records(first, RecordQuery(status="failed"))).total == 2
    assert (await store.records(first, RecordQuery(status="pending"))).total == 0
    assert await store.awaiting_receipts("aliyun", PULL_AT, 10) == []
    for event in await store.claim_callbacks(NOW + 30, LEASE, 10, "t1"):
        await store.finish_callbacks("t1", [(event.event_id, "delivered", None, None)], NOW + 30)
    finals = await store.claim_callbacks(NOW + 31, LEASE, 10, "t2")
    assert sorted(events(finals)) == [("f1", 2, "failed"), ("f2", 2, "failed")]
    assert {json.loads(e.facts)["error"] for e in finals} == {NO_RECEIPT_ERROR}


# -- leases ----------------------------------------------------------------------------------------


async def test_a_lease_is_one_owner_s_until_it_expires(store: Store):
    ttl = 10_000
    assert await store.take_lease("pull:aliyun", "a", NOW, ttl) is True
    assert await store.take_lease("pull:aliyun", "b", NOW + 1, ttl) is False
    assert await store.take_lease("pull:tencent", "b", NOW + 1, ttl) is True  # another lease
    assert await store.take_lease("pull:aliyun", "a", NOW + 5_000, ttl) is True  # renewed to 15 000
    assert await store.take_lease("pull:aliyun", "b", NOW + 14_999, ttl) is False
    assert await store.take_lease("pull:aliyun", "b", NOW + 15_000, ttl) is True  # expired
    assert await store.take_lease("pull:aliyun", "a", NOW + 15_001, ttl) is False


# -- usage -----------------------------------------------------------------------------------------


async def test_usage_adds_up_the_records_per_account_carrier_and_quarter_hour(store: Store):
    start = NOW - NOW % USAGE_BUCKET_MS
    later = start + USAGE_BUCKET_MS + 7
    first = await store.create_account(new_account("use1", 10**9), NOW)
    second = await store.create_account(new_account("use2", 10**9), NOW)
    # Many records at one millisecond (more than one page of a Redis read), then one a millisecond.
    await store.reserve(first.id, [record(f"same-{i}", 100, 2) for i in range(1500)], start)
    for i in range(20):
        await store.reserve(first.id, [record(f"t-{i}", 50, 1)], start + 1 + i)
    tencent = NewRecord("tc", "138****8000", "1", "tencent", 70, "h-tc", None, 1)
    await store.reserve(first.id, [tencent, record("late", 100, 2)], later)
    await store.reserve(second.id, [record("x", 300, 6)], later)
    await store.reserve(second.id, [record("edge", 100, 2)], start + 2 * USAGE_BUCKET_MS)  # the end
    await store.settle(first.id, [Settlement("same-0", "failed", "aliyun", 0, None, "E: x", 2)], later, DAY)
    await store.settle(second.id, [Settlement("x", "success", "aliyun", 250, "biz-x", None, 5)], later, DAY)
    end = start + 2 * USAGE_BUCKET_MS
    expected = [
        UsageBucket(first.id, "aliyun", start, 1520, 3020, 1499 * 100 + 20 * 50, 100),
        UsageBucket(first.id, "aliyun", start + USAGE_BUCKET_MS, 1, 2, 100, 0),
        UsageBucket(first.id, "tencent", start + USAGE_BUCKET_MS, 1, 1, 70, 0),
        UsageBucket(second.id, "aliyun", start + USAGE_BUCKET_MS, 1, 5, 250, 0),
    ]

    def ordered(buckets: list[UsageBucket]) -> list[UsageBucket]:
        return sorted(buckets, key=lambda b: (b.account_id, b.provider, b.start_ms))

    assert ordered(await store.usage(start, end, None)) == expected
    assert ordered(await store.usage(start, end, second.id)) == expected[3:]
    assert await store.usage(start + 21, later, None) == []  # nothing created in between


# -- Redis's own: the keys of one slot, a script run twice, records from before billing ------------


@pytest.fixture
async def redis_store(redis_server) -> AsyncIterator[tuple[RedisStore, Redis]]:
    client = redis_client(RedisConfig(url=redis_server.url, key_prefix="b:", timeout=0.5))
    raw = Redis.from_url(redis_server.url)
    yield RedisStore(client, "b:"), raw
    await raw.aclose()
    await client.aclose()


async def test_redis_keeps_the_waiting_records_in_the_account_s_slot_and_runs_twice_safely(redis_store):
    store, raw = redis_store
    account_id = await sent(store, "twice", "w1", "w2", "w3")
    await store.settle(account_id, [waiting("w1"), waiting("w2"), waiting("w3")], NOW, DAY)
    await store.settle(account_id, [waiting("w1"), waiting("w2"), waiting("w3")], NOW, DAY)  # retried
    tag = key_slot(store.keys.account(account_id).encode())
    indexes = [store.keys.pulls(account_id, "aliyun"), store.keys.unreceipted(account_id, "aliyun")]
    assert [key_slot(key.encode()) for key in indexes] == [tag, tag]
    assert [await raw.zcard(key) for key in indexes] == [3, 3]
    # FINALISE with a count, run twice (the client's retry after a lost reply): charged once.
    finals = ["1", "success", "", 3]
    keys = [
        store.keys.account(account_id),
        *(store.keys.records(account_id, s) for s in ("pending", "success", "failed")),
    ]
    first = await store._receipts._finalise(keys, [store.keys.record_base(account_id), NOW, *finals])
    again = await store._receipts._finalise(keys, [store.keys.record_base(account_id), NOW, *finals])
    assert (first, again) == ([1, [2, 3]], [0, []])
    assert await money(store, "twice") == 650
    assert [await raw.zcard(key) for key in indexes] == [2, 2]
    assert await raw.hget(f"{store.keys.record_base(account_id)}1", "sealed_phone") is None
    # GIVE_UP run twice: the second finds nothing more, refunds nothing more.
    give_up = [
        store.keys.account(account_id),
        indexes[1],
        *(store.keys.records(account_id, s) for s in ("pending", "failed")),
    ]
    args = [store.keys.record_base(account_id), NOW + 1, 1, NOW + 5, 10, NO_RECEIPT_ERROR]
    assert [await store._give_up(give_up, args) for _ in range(2)] == [2, 0]
    assert await money(store, "twice") == 850
    assert [await raw.zcard(key) for key in indexes] == [0, 0]


async def test_redis_reads_records_from_before_billing_with_the_defaults(redis_store):
    store, raw = redis_store
    account_id = await sent(store, "before", "old")
    await store.settle(account_id, [Settlement("old", "failed", "aliyun", 0, None, "E: x", 2)], NOW, DAY)
    key = f"{store.keys.record_base(account_id)}1"
    await raw.hset(key, "no_receipt", 1)
    assert (await one(store, account_id, "old")).no_receipt is True
    await raw.hdel(key, "segments", "refunded_milli", "no_receipt")
    found = await one(store, account_id, "old")
    assert (found.segments, found.refunded_milli, found.no_receipt) == (1, 0, False)
    [page] = (await store.records(account_id, RecordQuery())).records
    assert page == found
