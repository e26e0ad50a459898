"""The store contract, run unchanged against every backend (SQLite file, real Redis server).

Whatever a handler can observe through :class:`gateway.store.base.Store` must be the same on both:
accounts, all-or-nothing charging under concurrency, settling, records and receipts. A backend's
own mechanics (SQLite's WAL and indexes, Redis's keys) are tested in its own file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.config.model import GatewayConfig
from gateway.redis.client import RedisSource
from gateway.store.audit import AuditEntry
from gateway.store.backends import STORES, build_store
from gateway.store.base import AccountExists, NewAccount, Store
from gateway.store.cache import CachedStore
from gateway.store.callbacks import CallbackOutbox, OutboxEvent
from gateway.store.records import EARLY_RECEIPT_TTL_MS, NewRecord, ReceiptUpdate, RecordQuery, Settlement
from tests.conftest import REDIS_MODES, SHARED_SECRET, redis_section

DAY = "2024-05-01"
NEXT_DAY = "2024-05-02"
NOW = 1_714_521_600_000  # 2024-05-01 00:00:00 UTC, in epoch milliseconds


BACKENDS = ["sqlite", "redis"]


def test_every_store_backend_runs_the_contract():
    assert sorted(BACKENDS) == sorted(STORES)


@pytest.fixture(params=["cached", "bare"])
def cached(request) -> bool:
    """Every backend keeps the contract both behind the account cache (as built) and without it."""
    return request.param == "cached"


@pytest.fixture(params=["sqlite", *(f"redis-{mode}" for mode in REDIS_MODES), "redis-sentinel-wait"])
async def store(request, cached: bool, make_config: Callable[..., GatewayConfig]) -> AsyncIterator[Store]:
    """An empty store of each backend (Redis in each mode, and on Sentinel with every write
    confirmed by its replica: ``redis.wait_replicas``), built from config by the factory the
    gateway uses."""
    backend, _, mode = request.param.partition("-")
    if backend == "redis":
        mode, _, wait = mode.partition("-")
        config = make_config(
            store={"backend": "redis"},
            server={"secret_key": SHARED_SECRET},
            redis={
                "key_prefix": "contract:",
                **redis_section(request, mode),
                "wait_replicas": 1 if wait else 0,
            },
        )
    else:
        config = make_config(store={"timeout": 1.0})
    async with RedisSource(config.redis) as redis:
        opened = build_store(config, redis)
        assert isinstance(opened, CachedStore)
        if not cached:
            opened = opened.inner
        assert type(opened.inner if cached else opened).__name__.lower().startswith(backend)
        await opened.open()
        yield opened
        await opened.close()


def new_account(name: str, balance_milli: int = 1000, **extra: object) -> NewAccount:
    return NewAccount(
        name=name,
        api_key=f"sk_{name}",
        secret_hash="scrypt$test",
        balance_milli=balance_milli,
        verification_status="approved",
        **extra,
    )


def accepted(message_id: str, carrier_id: str | None = None, price_milli: int = 50) -> Settlement:
    return Settlement(message_id, "success", "mock", price_milli, carrier_id)


def refused(message_id: str, error: str | None = None) -> Settlement:
    return Settlement(message_id, "failed", "mock", 0, error=error)


def new_records(prefix: str, count: int, price_milli: int = 50) -> list[NewRecord]:
    return [
        NewRecord(f"{prefix}-{i}", "138****8000", "123456", "mock", price_milli, f"h-{prefix}-{i}")
        for i in range(count)
    ]


async def balance(store: Store, name: str) -> int:
    account = await store.account_by_key(f"sk_{name}")
    assert account is not None
    return account.balance_milli


async def by_message(store: Store, account_id: int, **query: object) -> dict[str, tuple[str, str | None]]:
    page = await store.records(account_id, RecordQuery(per_page=100, **query))  # type: ignore[arg-type]
    return {r.message_id: (r.status, r.error) for r in page.records}


# -- accounts --------------------------------------------------------------------------------------


async def test_accounts_are_created_found_and_listed_in_order(store: Store):
    first = await store.create_account(
        new_account("alpha", 1234, providers=("mock", "tencent"), rate=2.5, burst=7), NOW
    )
    second = await store.create_account(new_account("beta", 0), NOW)
    assert (first.name, first.api_key, first.secret_hash) == ("alpha", "sk_alpha", "scrypt$test")
    assert (first.balance_milli, first.verification_status, first.disabled) == (1234, "approved", False)
    assert (first.providers, first.rate, first.burst, first.total_sent) == (("mock", "tencent"), 2.5, 7, 0)
    assert (second.providers, second.rate, second.burst) == ((), None, None)
    assert first.id != second.id
    assert await store.account_by_key("sk_alpha") == first
    assert await store.account_by_key("sk_nobody") is None
    assert [a.name for a in await store.list_accounts()] == ["alpha", "beta"]
    assert "secret_hash" not in str(first.public()) and "scrypt" not in str(first.public())


async def test_a_duplicate_name_or_key_is_refused_and_leaves_nothing_behind(store: Store):
    await store.create_account(new_account("taken"), NOW)
    with pytest.raises(AccountExists):
        await store.create_account(new_account("taken"), NOW)  # same name, same key
    with pytest.raises(AccountExists):
        await store.create_account(NewAccount("taken", "sk_other", "h", 0, "approved"), NOW)
    with pytest.raises(AccountExists):
        await store.create_account(NewAccount("other", "sk_taken", "h", 0, "approved"), NOW)
    # The refused attempts claimed nothing: "other" and "sk_other" are still free.
    created = await store.create_account(NewAccount("other", "sk_other", "h", 5, "pending"), NOW)
    assert created.name == "other" and created.balance_milli == 5
    assert [a.name for a in await store.list_accounts()] == ["taken", "other"]
    assert (await store.account_by_key("sk_taken")).balance_milli == 1000


async def test_update_account_changes_only_what_it_names(store: Store):
    await store.create_account(new_account("upd", rate=3.0, burst=4), NOW)
    changed = await store.update_account(
        "sk_upd",
        verification_status="rejected",
        disabled=True,
        providers=("aliyun",),
        secret_hash="scrypt$new",
    )
    assert changed is not None
    assert (changed.verification_status, changed.disabled) == ("rejected", True)
    assert (changed.providers, changed.secret_hash) == (("aliyun",), "scrypt$new")
    assert (changed.rate, changed.burst, changed.balance_milli) == (3.0, 4, 1000)
    again = await store.update_account("sk_upd", disabled=False, rate=0.5, burst=1)
    assert (again.disabled, again.rate, again.burst) == (False, 0.5, 1)
    assert await store.account_by_key("sk_upd") == again
    assert await store.update_account("sk_nobody", disabled=True) is None
    with pytest.raises(ValueError, match="balance_milli"):
        await store.update_account("sk_upd", balance_milli=10**9)


async def test_callback_settings_are_created_updated_and_cleared(store: Store):
    """An account's callback URL, prefixes and signing secret (kept as is: it must sign)."""
    prefixes = ("https://hooks.example.com/sms/", "http://10.0.0.5:8080/cb")
    created = await store.create_account(
        new_account("hooks", callback_url="https://hooks.example.com/sms/in", callback_prefixes=prefixes), NOW
    )
    assert (created.callback_url, created.callback_prefixes) == ("https://hooks.example.com/sms/in", prefixes)
    assert created.callback_secret is None
    plain = await store.create_account(new_account("nohooks"), NOW)
    assert (plain.callback_url, plain.callback_prefixes, plain.callback_secret) == (None, (), None)
    changed = await store.update_account(
        "sk_hooks", callback_url="http://10.0.0.5:8080/cb/x", callback_secret="s3cr3t-value"
    )
    assert changed is not None and changed.callback_secret == "s3cr3t-value"
    assert (changed.callback_url, changed.callback_prefixes) == ("http://10.0.0.5:8080/cb/x", prefixes)
    assert await store.account_by_key("sk_hooks") == changed
    cleared = await store.update_account("sk_hooks", callback_url=None, callback_prefixes=())
    assert (cleared.callback_url, cleared.callback_prefixes, cleared.callback_secret) == (
        None,
        (),
        "s3cr3t-value",
    )
    assert [a.callback_secret for a in await store.list_accounts()] == ["s3cr3t-value", None]
    public = cleared.public()
    assert public["callback_signed"] is True and "s3cr3t" not in str(public)


async def test_the_configs_secret_is_recorded_and_replaced_once_per_change(store: Store):
    """What the config last applied to a listed account (``gateway.accounts.listed``): read back, and
    replaced only by whoever still expects the recorded value, so concurrent starters apply a
    change once."""
    listed = await store.create_account(new_account("listed", config_secret_hash="cfg-1"), NOW)
    await store.create_account(new_account("plain"), NOW)
    assert await store.config_secret_hash("sk_listed") == "cfg-1"
    assert await store.config_secret_hash("sk_plain") is None  # created by an operator
    assert await store.config_secret_hash("sk_nobody") is None
    assert await store.account_by_key("sk_listed") == listed  # cached, where there is a cache
    assert await store.apply_config_secret("sk_listed", "cfg-0", "cfg-2", "hash-2") is None  # stale
    assert (await store.account_by_key("sk_listed")).secret_hash == "scrypt$test"
    applied = await store.apply_config_secret("sk_listed", "cfg-1", "cfg-2", "hash-2")
    assert applied is not None and (applied.secret_hash, applied.balance_milli) == ("hash-2", 1000)
    assert await store.account_by_key("sk_listed") == applied
    assert await store.config_secret_hash("sk_listed") == "cfg-2"
    racing = await asyncio.gather(
        *(store.apply_config_secret("sk_listed", "cfg-2", f"cfg-3-{n}", f"hash-3-{n}") for n in range(6))
    )
    [winner] = [account for account in racing if account is not None]
    assert await store.config_secret_hash("sk_listed") == f"cfg-3-{winner.secret_hash[-1]}"
    kept = await store.apply_config_secret("sk_plain", None, "cfg-p", None)  # recorded, secret kept
    assert kept is not None and kept.secret_hash == "scrypt$test"
    assert await store.config_secret_hash("sk_plain") == "cfg-p"
    assert await store.apply_config_secret("sk_nobody", None, "cfg-x", "hash-x") is None
    assert "cfg" not in str(applied.public()) and "cfg" not in str(await store.list_accounts())


async def test_top_up_adds_to_the_balance(store: Store):
    await store.create_account(new_account("topped", 100), NOW)
    assert (await store.top_up("sk_topped", 2345)).balance_milli == 2445
    assert await balance(store, "topped") == 2445
    assert await store.top_up("sk_nobody", 10) is None


# -- reserve ---------------------------------------------------------------------------------------


async def test_reserve_is_all_or_nothing(store: Store):
    account = await store.create_account(new_account("short", 120), NOW)
    assert await store.reserve(account.id, new_records("too-many", 3), NOW) is False
    assert await balance(store, "short") == 120
    assert (await store.records(account.id, RecordQuery())).total == 0
    assert await store.reserve(account.id, new_records("fits", 2), NOW) is True
    assert await balance(store, "short") == 20
    page = await store.records(account.id, RecordQuery())
    assert page.total == 2 and {r.status for r in page.records} == {"pending"}
    assert {r.phone for r in page.records} == {"138****8000"}
    assert {(r.created_ms, r.updated_ms, r.error) for r in page.records} == {(NOW, NOW, None)}


async def test_reserve_for_an_exact_balance_leaves_zero_never_negative(store: Store):
    account = await store.create_account(new_account("exact", 150), NOW)
    assert await store.reserve(account.id, new_records("a", 3), NOW) is True
    assert await balance(store, "exact") == 0
    assert await store.reserve(account.id, new_records("b", 1, price_milli=1), NOW) is False
    assert await balance(store, "exact") == 0


async def test_a_free_message_is_reserved_and_costs_nothing(store: Store):
    """A backend may be priced 0 (a carrier billed elsewhere): its sends go out, and take nothing."""
    account = await store.create_account(new_account("free", 120), NOW)
    assert await store.reserve(account.id, new_records("gratis", 2, price_milli=0), NOW) is True
    assert await balance(store, "free") == 120
    assert (await store.records(account.id, RecordQuery())).total == 2


async def test_reserve_for_an_unknown_account_is_refused(store: Store):
    assert await store.reserve(999, new_records("ghost", 1), NOW) is False


async def test_concurrent_reserves_never_overdraw(store: Store):
    account = await store.create_account(new_account("rush", 500), NOW)
    outcomes = await asyncio.gather(
        *(store.reserve(account.id, new_records(f"c{i}", 2), NOW + i) for i in range(40))
    )
    assert sum(outcomes) == 5  # 500 / (2 × 50)
    assert await balance(store, "rush") == 0
    page = await store.records(account.id, RecordQuery(per_page=100))
    assert page.total == 10 and len({r.id for r in page.records}) == 10
    granted = {f"c{i}" for i, ok in enumerate(outcomes) if ok}
    assert {r.message_id.rsplit("-", 1)[0] for r in page.records} == granted  # whole requests only


# -- settle ----------------------------------------------------------------------------------------


async def test_settle_refunds_refusals_once_and_counts_acceptances(store: Store):
    account = await store.create_account(new_account("settler", 1000), NOW)
    await store.reserve(account.id, new_records("m", 3), NOW)
    assert await balance(store, "settler") == 850
    results = [
        accepted("m-0", carrier_id="c-0"),
        refused("m-1", error="MOCK_REFUSED: no"),
        accepted("m-2", carrier_id="c-2"),
    ]
    await store.settle(account.id, results, NOW + 1000, DAY)
    await store.settle(account.id, results, NOW + 2000, DAY)  # a retried settle changes nothing
    assert await balance(store, "settler") == 900
    refreshed = await store.account_by_key("sk_settler")
    assert refreshed is not None and refreshed.total_sent == 2
    assert await store.today_sent(account.id, DAY) == 2
    assert await store.today_sent(account.id, NEXT_DAY) == 0
    page = await store.records(account.id, RecordQuery())
    by_id = {r.message_id: r for r in page.records}
    assert (by_id["m-1"].status, by_id["m-1"].error) == ("failed", "MOCK_REFUSED: no")
    assert (by_id["m-0"].status, by_id["m-0"].error) == ("success", None)
    assert (by_id["m-0"].created_ms, by_id["m-0"].updated_ms) == (NOW, NOW + 1000)


async def test_settle_counts_each_local_day_apart(store: Store):
    account = await store.create_account(new_account("days", 1000), NOW)
    await store.reserve(account.id, new_records("d1", 2), NOW)
    await store.settle(account.id, [accepted("d1-0"), accepted("d1-1")], NOW, DAY)
    await store.reserve(account.id, new_records("d2", 2), NOW)
    await store.settle(account.id, [accepted("d2-0"), refused("d2-1")], NOW, NEXT_DAY)
    assert await store.today_sent(account.id, DAY) == 2
    assert await store.today_sent(account.id, NEXT_DAY) == 1
    assert (await store.account_by_key("sk_days")).total_sent == 3


async def test_settle_only_moves_pending_records(store: Store):
    account = await store.create_account(new_account("final", 1000), NOW)
    await store.reserve(account.id, new_records("f", 1), NOW)
    await store.settle(account.id, [accepted("f-0")], NOW, DAY)
    await store.settle(account.id, [refused("f-0", error="late")], NOW + 5, DAY)
    [record] = (await store.records(account.id, RecordQuery())).records
    assert (record.status, record.error) == ("success", None)
    assert await balance(store, "final") == 950  # a late failure of a delivered message refunds nothing


async def test_settle_charges_the_carrier_that_took_it_and_refunds_the_rest(store: Store):
    account = await store.create_account(new_account("failover", 1000), NOW)
    await store.reserve(account.id, new_records("r", 2, price_milli=60), NOW)  # the dearest carrier
    assert await balance(store, "failover") == 880
    await store.settle(
        account.id, [Settlement("r-0", "success", "aliyun", 45, "biz"), refused("r-1")], NOW, DAY
    )
    assert await balance(store, "failover") == 1000 - 45
    by_id = {r.message_id: r for r in (await store.records(account.id, RecordQuery())).records}
    assert by_id["r-0"].provider == "aliyun" and by_id["r-1"].provider == "mock"


async def test_settle_ignores_another_accounts_and_unknown_records(store: Store):
    owner = await store.create_account(new_account("owner", 1000), NOW)
    intruder = await store.create_account(new_account("intruder", 1000), NOW)
    await store.reserve(owner.id, new_records("o", 1), NOW)
    await store.settle(intruder.id, [refused("o-0"), refused("nowhere")], NOW, DAY)
    assert await balance(store, "intruder") == 1000 and await balance(store, "owner") == 950
    [record] = (await store.records(owner.id, RecordQuery())).records
    assert record.status == "pending"


async def test_an_accepted_send_awaiting_its_receipt_stays_pending_and_is_charged(store: Store):
    account = await store.create_account(new_account("waiting", 1000), NOW)
    await store.reserve(account.id, new_records("w", 2), NOW)
    await store.settle(
        account.id,
        [
            Settlement("w-0", "pending", "mock", 40, "sid-0"),
            Settlement("w-1", "pending", "mock", 40, "sid-1"),
        ],
        NOW + 1,
        DAY,
    )
    assert await balance(store, "waiting") == 1000 - 80
    assert (await store.account_by_key("sk_waiting")).total_sent == 2
    assert await store.today_sent(account.id, DAY) == 2
    assert await by_message(store, account.id, status="pending") == {
        "w-0": ("pending", None),
        "w-1": ("pending", None),
    }
    # Settled once: a second settle (even a refusal) changes nothing.
    await store.settle(account.id, [refused("w-0")], NOW + 2, DAY)
    assert await balance(store, "waiting") == 1000 - 80
    assert (await by_message(store, account.id))["w-0"] == ("pending", None)


# -- records ---------------------------------------------------------------------------------------


async def _history(store: Store) -> int:
    """Six records at three instants (written out of time order), a success and a failure each."""
    account = await store.create_account(new_account("hist", 10**6), NOW)
    for step, at in enumerate((NOW + 2000, NOW, NOW + 1000)):
        batch = new_records(f"t{step}", 2)
        await store.reserve(account.id, batch, at)
        await store.settle(
            account.id, [accepted(batch[0].message_id), refused(batch[1].message_id)], at + 5, DAY
        )
    return account.id


async def test_records_are_newest_first_with_ties_by_id_and_page_exactly(store: Store):
    account_id = await _history(store)
    page = await store.records(account_id, RecordQuery(per_page=100))
    assert page.total == 6
    listed = [(r.created_ms, r.message_id) for r in page.records]
    assert listed == [
        (NOW + 2000, "t0-1"),
        (NOW + 2000, "t0-0"),
        (NOW + 1000, "t2-1"),
        (NOW + 1000, "t2-0"),
        (NOW, "t1-1"),
        (NOW, "t1-0"),
    ]
    ids = [r.id for r in page.records]
    assert ids[0] > ids[1] and ids[2] > ids[3] and ids[4] > ids[5]
    pages = [await store.records(account_id, RecordQuery(page=n, per_page=4)) for n in (1, 2, 3)]
    assert [len(p.records) for p in pages] == [4, 2, 0] and {p.total for p in pages} == {6}
    assert [r.id for p in pages for r in p.records] == ids


async def test_records_filter_by_status_and_inclusive_time(store: Store):
    account_id = await _history(store)

    async def ids(**query: object) -> tuple[int, list[str]]:
        page = await store.records(account_id, RecordQuery(per_page=100, **query))  # type: ignore[arg-type]
        return page.total, [r.message_id for r in page.records]

    assert await ids(status="failed") == (3, ["t0-1", "t2-1", "t1-1"])
    assert await ids(status="success") == (3, ["t0-0", "t2-0", "t1-0"])
    assert await ids(status="pending") == (0, [])
    assert await ids(start_ms=NOW + 1000) == (4, ["t0-1", "t0-0", "t2-1", "t2-0"])
    assert await ids(end_ms=NOW + 1000) == (4, ["t2-1", "t2-0", "t1-1", "t1-0"])
    assert await ids(start_ms=NOW + 1000, end_ms=NOW + 1000, status="success") == (1, ["t2-0"])
    assert await ids(start_ms=NOW + 1, end_ms=NOW + 999) == (0, [])
    second = await store.records(account_id, RecordQuery(status="failed", page=2, per_page=2))
    assert second.total == 3 and [r.message_id for r in second.records] == ["t1-1"]


async def test_records_belong_to_their_account_only(store: Store):
    mine = await store.create_account(new_account("mine"), NOW)
    theirs = await store.create_account(new_account("theirs"), NOW)
    await store.reserve(mine.id, new_records("mine", 2), NOW)
    await store.reserve(theirs.id, new_records("theirs", 3), NOW)
    assert set(await by_message(store, mine.id)) == {"mine-0", "mine-1"}
    assert (await store.records(theirs.id, RecordQuery())).total == 3
    assert (await store.records(999, RecordQuery())).total == 0


async def test_records_are_numbered_per_account(store: Store):
    """A record's id counts the account's own records only: it tells nothing about other tenants."""
    first = await store.create_account(new_account("first", 10**6), NOW)
    second = await store.create_account(new_account("second", 10**6), NOW)
    for step, (account, count) in enumerate(((first, 2), (second, 3), (first, 1), (second, 2))):
        await store.reserve(account.id, new_records(f"{account.name}{step}", count), NOW + step)
    for account, expected in (
        (first, ["first2-0", "first0-1", "first0-0"]),
        (second, ["second3-1", "second3-0", "second1-2", "second1-1", "second1-0"]),
    ):
        page = await store.records(account.id, RecordQuery(per_page=100))
        assert [r.message_id for r in page.records] == expected  # newest first
        assert [r.id for r in page.records] == list(range(len(expected), 0, -1))


async def test_records_show_the_price_charged_and_zero_once_refunded(store: Store):
    account = await store.create_account(new_account("payer", 1000), NOW)
    await store.reserve(
        account.id,
        [
            NewRecord(mid, "138****8001", "123456", "aliyun", 60, f"hash-{mid}")
            for mid in ("taken", "cheaper", "refused", "undelivered")
        ],
        NOW,
    )

    async def prices() -> dict[str, int]:
        page = await store.records(account.id, RecordQuery(per_page=100))
        return {r.message_id: r.price_milli for r in page.records}

    assert await prices() == dict.fromkeys(("taken", "cheaper", "refused", "undelivered"), 60)
    await store.settle(
        account.id,
        [
            Settlement("taken", "success", "aliyun", 60, "biz-1"),
            Settlement("cheaper", "success", "mock", 45, "mock-1"),  # a cheaper failover took it
            Settlement("refused", "failed", "aliyun", 0, error="E: refused"),
            Settlement("undelivered", "pending", "aliyun", 60, "biz-2"),
        ],
        NOW + 1,
        DAY,
    )
    await store.apply_receipts(
        "aliyun", [ReceiptUpdate("biz-2", "hash-undelivered", False, "UNDELIV")], NOW + 2
    )
    assert (await by_message(store, account.id))["undelivered"] == ("failed", "UNDELIV")
    # A failed delivery is not refunded (the carrier charged for it), so it still shows its price.
    assert await prices() == {"taken": 60, "cheaper": 45, "refused": 0, "undelivered": 60}
    assert await balance(store, "payer") + sum((await prices()).values()) == 1000


# -- receipts --------------------------------------------------------------------------------------


async def _reserved(store: Store, *message_ids: str) -> int:
    account = await store.create_account(new_account("acme", 1000), NOW)
    await store.reserve(
        account.id,
        [NewRecord(mid, "138****8001", "123456", "aliyun", 60, f"hash-{mid}") for mid in message_ids],
        NOW,
    )
    return account.id


async def test_receipts_finalise_pending_records_once_without_refund(store: Store):
    account_id = await _reserved(store, "m1", "m2", "m3")
    await store.settle(
        account_id,
        [Settlement(mid, "pending", "aliyun", 60, "biz-1") for mid in ("m1", "m2", "m3")],
        NOW + 5,
        DAY,
    )
    receipts = [
        ReceiptUpdate("biz-1", "hash-m1", False, "UNDELIV: off"),
        ReceiptUpdate("biz-1", "hash-m2", True),
        ReceiptUpdate("biz-1", "hash-m2", False, "contradiction"),  # the first word stands
    ]
    assert (await store.apply_receipts("aliyun", receipts, NOW + 9)).changed == 2
    assert (await store.apply_receipts("aliyun", receipts, NOW + 10)).changed == 0  # a re-push is a no-op
    states = await by_message(store, account_id)
    assert states == {"m1": ("failed", "UNDELIV: off"), "m2": ("success", None), "m3": ("pending", None)}
    assert await balance(store, "acme") == 1000 - 3 * 60
    assert set(await by_message(store, account_id, status="failed")) == {"m1"}
    assert set(await by_message(store, account_id, status="pending")) == {"m3"}
    page = await store.records(account_id, RecordQuery(status="success"))
    assert [(r.message_id, r.created_ms, r.updated_ms) for r in page.records] == [("m2", NOW, NOW + 9)]


async def test_store_applies_a_receipt_that_came_before_settle(store: Store):
    account_id = await _reserved(store, "m1", "m2", "m3")
    early = [
        ReceiptUpdate("biz-1", "hash-m1", False, "UNDELIV: off"),
        ReceiptUpdate("biz-1", "hash-m2", True),
    ]
    assert (await store.apply_receipts("aliyun", early, NOW)).changed == 0  # nothing to finalise yet
    assert (await store.apply_receipts("aliyun", early, NOW)).changed == 0  # a re-push parks nothing twice
    await store.settle(
        account_id,
        [Settlement(mid, "pending", "aliyun", 60, "biz-1") for mid in ("m1", "m2", "m3")],
        NOW + 5,
        DAY,
    )
    assert await by_message(store, account_id) == {
        "m1": ("failed", "UNDELIV: off"),
        "m2": ("success", None),
        "m3": ("pending", None),
    }
    assert await balance(store, "acme") == 1000 - 3 * 60  # charged: the carrier took all three
    assert (await store.account_by_key("sk_acme")).total_sent == 3
    assert set(await by_message(store, account_id, status="pending")) == {"m3"}
    # Receipts for final records are no-ops; the pending one is finalised once.
    late = [*early, ReceiptUpdate("biz-1", "hash-m3", True), ReceiptUpdate("biz-1", "hash-m3", False)]
    assert (await store.apply_receipts("aliyun", late, NOW + 9)).changed == 1
    assert (await by_message(store, account_id))["m3"] == ("success", None)


async def test_store_matches_provider_id_and_number_together(store: Store):
    account_id = await _reserved(store, "m1")
    await store.settle(account_id, [Settlement("m1", "pending", "aliyun", 60, "biz-1")], NOW, DAY)
    for provider, receipt in (
        ("tencent", ReceiptUpdate("biz-1", "hash-m1", True)),
        ("aliyun", ReceiptUpdate("biz-2", "hash-m1", True)),
        ("aliyun", ReceiptUpdate("biz-1", "hash-other", True)),
    ):
        assert (await store.apply_receipts(provider, [receipt], NOW)).changed == 0
    assert (await by_message(store, account_id))["m1"] == ("pending", None)


async def test_an_early_receipt_older_than_a_day_is_not_applied(store: Store):
    account_id = await _reserved(store, "m1")
    await store.apply_receipts("aliyun", [ReceiptUpdate("biz-1", "hash-m1", False, "old")], NOW)
    later = NOW + EARLY_RECEIPT_TTL_MS + 1
    await store.apply_receipts("aliyun", [ReceiptUpdate("other", "h", True)], later)
    await store.settle(account_id, [Settlement("m1", "pending", "aliyun", 60, "biz-1")], later, DAY)
    assert (await by_message(store, account_id))["m1"] == ("pending", None)


async def test_parked_receipts_are_capped_in_total_the_oldest_dropped_first(store: Store):
    cap = 3
    store.max_parked_receipts = cap  # type: ignore[attr-defined]  # both stores take it
    sent = [f"m{i}" for i in range(cap + 4)]
    account_id = await _reserved(store, *sent)
    for i, mid in enumerate(sent):  # each names no record yet: all parked, one after another
        parked = await store.apply_receipts(
            "aliyun", [ReceiptUpdate(f"biz-{i}", f"hash-{mid}", True)], NOW + i
        )
        assert parked.changed == 0
    await store.settle(
        account_id,
        [Settlement(mid, "pending", "aliyun", 60, f"biz-{i}") for i, mid in enumerate(sent)],
        NOW + 100,
        DAY,
    )
    states = await by_message(store, account_id)
    # Only the newest ``cap`` were kept: the store never held more than that.
    assert [mid for mid in sent if states[mid] == ("success", None)] == sent[-cap:]
    assert [mid for mid in sent if states[mid] == ("pending", None)] == sent[:-cap]


async def test_a_refused_send_is_final_before_any_receipt(store: Store):
    account_id = await _reserved(store, "m1")
    await store.apply_receipts("aliyun", [ReceiptUpdate("biz-1", "hash-m1", True)], NOW)
    await store.settle(account_id, [Settlement("m1", "failed", "aliyun", 0, "biz-1", "E: no")], NOW, DAY)
    assert (await by_message(store, account_id))["m1"] == ("failed", "E: no")
    assert await balance(store, "acme") == 1000


# -- idempotency keys ------------------------------------------------------------------------------

DAY_MS = 24 * 3600 * 1000
LEASE_MS = 120_000


async def _claim(
    store: Store,
    account_id: int,
    token: str,
    fingerprint: str = "fp-1",
    now_ms: int = NOW,
    key: str = "key-1",
):
    return await store.claim_idempotency(account_id, key, fingerprint, token, now_ms, DAY_MS, LEASE_MS)


async def test_an_idempotency_key_is_claimed_once_then_replays_its_response(store: Store):
    account = await store.create_account(new_account("idem"), NOW)
    assert (await _claim(store, account.id, "t1")).state == "new"
    assert (await _claim(store, account.id, "t1")).state == "new"  # the owner's retried command
    assert (await _claim(store, account.id, "t2")).state == "pending"
    assert (await _claim(store, account.id, "t2", fingerprint="fp-2")).state == "conflict"
    await store.finish_idempotency(account.id, "key-1", "t1", 502, b'{"success":false}')
    await store.finish_idempotency(account.id, "key-1", "t1", 200, b"{}")  # once only
    claim = await _claim(store, account.id, "t2", now_ms=NOW + DAY_MS - 1)
    assert (claim.state, claim.status, claim.body) == ("replay", 502, b'{"success":false}')
    assert (await _claim(store, account.id, "t2", fingerprint="fp-2")).state == "conflict"


async def test_concurrent_claims_of_one_key_give_exactly_one_owner(store: Store):
    account = await store.create_account(new_account("idem"), NOW)
    claims = await asyncio.gather(*(_claim(store, account.id, f"t{i}") for i in range(10)))
    assert sorted(claim.state for claim in claims) == ["new"] + ["pending"] * 9


async def test_a_released_key_is_free_again_and_only_its_owner_releases(store: Store):
    account = await store.create_account(new_account("idem"), NOW)
    assert (await _claim(store, account.id, "t1")).state == "new"
    await store.release_idempotency(account.id, "key-1", "someone-else")
    assert (await _claim(store, account.id, "t2")).state == "pending"
    await store.release_idempotency(account.id, "key-1", "t1")
    assert (await _claim(store, account.id, "t2", fingerprint="fp-2")).state == "new"
    await store.finish_idempotency(account.id, "key-1", "t2", 200, b"{}")
    await store.release_idempotency(account.id, "key-1", "t2")  # a finished key stays
    assert (await _claim(store, account.id, "t3", fingerprint="fp-2")).state == "replay"


async def test_an_idempotency_key_expires_after_its_ttl_by_the_callers_clock(store: Store):
    account = await store.create_account(new_account("idem"), NOW)
    assert (await _claim(store, account.id, "t1")).state == "new"
    await store.finish_idempotency(account.id, "key-1", "t1", 200, b"{}")
    later = NOW + DAY_MS
    assert (await _claim(store, account.id, "t2", fingerprint="fp-2", now_ms=later)).state == "new"
    assert (await _claim(store, account.id, "t3", fingerprint="fp-2", now_ms=later)).state == "pending"


async def test_idempotency_keys_belong_to_their_account(store: Store):
    first = await store.create_account(new_account("idem"), NOW)
    second = await store.create_account(new_account("other"), NOW)
    assert (await _claim(store, first.id, "t1")).state == "new"
    assert (await _claim(store, second.id, "t2", fingerprint="fp-2")).state == "new"
    assert (await _claim(store, first.id, "t3", key="key-2")).state == "new"


async def test_an_unfinished_claim_past_its_lease_is_taken_over_once(store: Store):
    account = await store.create_account(new_account("idem"), NOW)
    assert (await _claim(store, account.id, "t1")).state == "new"
    assert (await _claim(store, account.id, "t2", now_ms=NOW + LEASE_MS - 1)).state == "pending"
    later = NOW + LEASE_MS
    claims = await asyncio.gather(*(_claim(store, account.id, f"r{i}", now_ms=later) for i in range(6)))
    assert sorted(claim.state for claim in claims) == ["pending"] * 5 + ["stale"]
    [taker] = [f"r{i}" for i, claim in enumerate(claims) if claim.state == "stale"]
    assert {claim.previous_token for claim in claims if claim.state == "stale"} == {"t1"}
    # The taker's retried command answers the same; the dead owner can no longer finish.
    again = await _claim(store, account.id, taker, now_ms=later)
    assert (again.state, again.previous_token) == ("stale", "t1")
    await store.finish_idempotency(account.id, "key-1", "t1", 200, b"dead")
    await store.finish_idempotency(account.id, "key-1", taker, 504, b"taken")
    claim = await _claim(store, account.id, "t9", now_ms=later + LEASE_MS)
    assert (claim.state, claim.status, claim.body) == ("replay", 504, b"taken")


async def test_a_taken_over_claim_gets_a_fresh_lease_and_keeps_the_first_token(store: Store):
    account = await store.create_account(new_account("idem"), NOW)
    await _claim(store, account.id, "t1")
    assert (await _claim(store, account.id, "t2", now_ms=NOW + LEASE_MS)).state == "stale"
    assert (await _claim(store, account.id, "t3", now_ms=NOW + 2 * LEASE_MS - 1)).state == "pending"
    # The taker died too: the next one still derives the message ids from the first token.
    third = await _claim(store, account.id, "t3", now_ms=NOW + 2 * LEASE_MS)
    assert (third.state, third.previous_token) == ("stale", "t1")
    await store.release_idempotency(account.id, "key-1", "t2")  # no longer its owner
    assert (await _claim(store, account.id, "t4", now_ms=NOW + 2 * LEASE_MS)).state == "pending"


async def test_records_are_found_by_message_id_in_the_order_asked(store: Store):
    account_id = await _reserved(store, "a", "b", "c")
    other = await store.create_account(new_account("other"), NOW)
    await store.settle(account_id, [accepted("b", carrier_id="cb-1")], NOW, DAY)
    found = await store.find_records(account_id, ["c", "nope", "a", "b"])
    assert [(r.message_id, r.status, r.carrier_id) for r in found] == [
        ("c", "pending", None),
        ("a", "pending", None),
        ("b", "success", "cb-1"),
    ]
    assert [r.id for r in found] == [3, 1, 2]
    assert found[0].price_milli == 60
    assert await store.find_records(other.id, ["a", "b"]) == []
    assert await store.find_records(account_id, []) == []


# -- the audit log, account changes, records by message id alone -----------------------------------


def entry(name: str, at_ms: int = NOW, **fields: object) -> AuditEntry:
    return AuditEntry(
        at_ms, "ops-alice", "topup", name, f"sk_{name}", {"balance": 1.0}, {"balance": 2.5}, **fields
    )  # type: ignore[arg-type]


async def test_audit_entries_are_kept_whole_and_paged_newest_first(store: Store):
    assert (await store.audit_page(1, 10)).total == 0
    await store.append_audit(entry("first", reason="invoice 7"))
    for number in range(4):
        await store.append_audit(
            AuditEntry(
                NOW + number + 1,
                "cli",
                "update",
                f"n{number}",
                f"sk_n{number}",
                {"ratelimit": None},
                {"ratelimit": {"rate": 2.5, "burst": 4}},
            )
        )
    everything = await store.audit_page(1, 10)
    assert everything.total == 5
    assert [e.account_name for e in everything.entries] == ["n3", "n2", "n1", "n0", "first"]
    ids = [e.id for e in everything.entries]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
    oldest = everything.entries[-1]
    assert oldest == entry("first", reason="invoice 7", id=oldest.id)
    assert everything.entries[0].after == {"ratelimit": {"rate": 2.5, "burst": 4}}
    assert everything.entries[0].reason is None
    second = await store.audit_page(2, 2)
    assert (second.total, [e.account_name for e in second.entries]) == (5, ["n1", "n0"])
    assert (await store.audit_page(4, 2)).entries == []


async def test_account_changes_name_each_announced_key_after_the_cursor(store: Store):
    await store.append_audit(entry("before"))  # announced before the cursor: not seen
    cursor, keys = await store.account_changes("", 0.05)
    assert cursor and keys == []
    assert await store.account_changes(cursor, 0.05) == (cursor, [])  # nothing new: waits, returns
    await store.append_audit(entry("one"))
    await store.append_audit(entry("two"))
    later, keys = await store.account_changes(cursor, 0.05)
    assert keys == ["sk_one", "sk_two"] and later != cursor
    assert (await store.account_changes(later, 0.05))[1] == []


async def test_a_follower_already_waiting_sees_an_announcement_promptly(store: Store):
    """Redis wakes the blocked read at once; SQLite's next poll (0.1 s) finds it."""
    cursor, _ = await store.account_changes("", 1.0)

    async def follow() -> list[str]:
        nonlocal cursor
        while True:
            cursor, keys = await store.account_changes(cursor, 5.0)
            if keys:
                return keys

    waiting = asyncio.create_task(follow())
    await asyncio.sleep(0.2)  # the follower is waiting (blocked on Redis, between polls on SQLite)
    loop = asyncio.get_running_loop()
    announced = loop.time()
    await store.append_audit(entry("woken"))
    assert await asyncio.wait_for(waiting, 5) == ["sk_woken"]
    assert loop.time() - announced < 0.5  # not after a 5 s wait


async def test_a_record_is_found_by_its_message_id_alone_with_its_account(store: Store):
    first = await store.create_account(new_account("first"), NOW)
    second = await store.create_account(new_account("second"), NOW)
    await store.reserve(first.id, new_records("a", 2), NOW)
    await store.reserve(second.id, new_records("b", 1), NOW)
    account, record = await store.find_message("b-0")
    assert (account.name, account.api_key) == ("second", "sk_second")
    assert (record.message_id, record.id, record.phone, record.status) == ("b-0", 1, "138****8000", "pending")
    account, record = await store.find_message("a-1")
    assert (account.name, record.id) == ("first", 2)
    assert await store.find_message("nowhere") is None


# -- the callback outbox ---------------------------------------------------------------------------

HOOK = "https://hooks.example.com/sms"
LEASE = 30_000


def outbox(store: Store) -> CallbackOutbox:
    """The store as its callback outbox (``gateway.store.callbacks``)."""
    return store


async def _hooked(store: Store, *message_ids: str, url: str | None = HOOK) -> int:
    account = await store.create_account(new_account("hooked", 1000), NOW)
    await store.reserve(
        account.id,
        [NewRecord(mid, "138****8001", "123456", "aliyun", 60, f"hash-{mid}", url) for mid in message_ids],
        NOW,
    )
    return account.id


def events(claimed: list[OutboxEvent]) -> list[tuple[str, int, str]]:
    return [(event.message_id, event.sequence, event.type) for event in claimed]


async def test_settle_writes_an_event_per_status_change_of_a_record_with_a_url(store: Store):
    box = outbox(store)
    account_id = await _hooked(store, "a", "r", "p")
    silent = await store.create_account(new_account("silent", 1000), NOW)
    await store.reserve(silent.id, new_records("s", 1), NOW)  # no URL: no events
    await store.settle(silent.id, [accepted("s-0")], NOW + 1, DAY)
    await store.settle(
        account_id,
        [
            Settlement("a", "success", "aliyun", 60, "biz-a"),
            Settlement("r", "failed", "aliyun", 0, error="isv.MOBILE_NUMBER_ILLEGAL: 13800138000 bad"),
            Settlement("p", "pending", "aliyun", 60, "biz-p"),
        ],
        NOW + 5,
        DAY,
    )
    await store.settle(account_id, [refused("a")], NOW + 6, DAY)  # no change: no event
    claimed = await box.claim_callbacks(NOW + 10, LEASE, 10, "t1")
    assert sorted(events(claimed)) == [("a", 1, "accepted"), ("p", 1, "accepted"), ("r", 1, "failed")]
    by_id = {event.message_id: event for event in claimed}
    assert len({event.event_id for event in claimed}) == 3
    refused_one = by_id["r"]
    assert (refused_one.account_id, refused_one.url, refused_one.state) == (account_id, HOOK, "pending")
    assert (refused_one.attempts, refused_one.created_ms, refused_one.next_ms) == (0, NOW + 5, NOW + 5)
    facts = json.loads(refused_one.facts)
    assert facts == {
        "phone": "138****8001",
        "template_id": "123456",
        "provider": "aliyun",
        "status": "failed",
        "error": "isv.MOBILE_NUMBER_ILLEGAL: 13800138000 bad",
        "price_milli": 0,
        "segments": 1,
        "occurred_ms": NOW + 5,
    }
    assert json.loads(by_id["p"].facts)["status"] == "pending"
    assert (json.loads(by_id["a"].facts)["status"], json.loads(by_id["a"].facts)["price_milli"]) == (
        "success",
        60,
    )


async def test_receipts_add_the_records_next_event_in_order(store: Store):
    box = outbox(store)
    account_id = await _hooked(store, "m1", "m2")
    pending = [Settlement(mid, "pending", "aliyun", 60, "biz-1") for mid in ("m1", "m2")]
    await store.settle(account_id, pending, NOW + 5, DAY)
    receipts = [
        ReceiptUpdate("biz-1", "hash-m1", True),
        ReceiptUpdate("biz-1", "hash-m2", False, "UNDELIV: x"),
    ]
    assert (await store.apply_receipts("aliyun", receipts, NOW + 9)).changed == 2
    assert (await store.apply_receipts("aliyun", receipts, NOW + 10)).changed == 0  # a re-push writes none
    first = await box.claim_callbacks(NOW + 20, LEASE, 10, "t1")
    assert sorted(events(first)) == [("m1", 1, "accepted"), ("m2", 1, "accepted")]  # not the later ones
    assert await box.claim_callbacks(NOW + 20, LEASE, 10, "t2") == []  # leased, and the rest wait
    for event in first:
        await box.finish_callbacks("t1", [(event.event_id, "delivered", None, None)], NOW + 21)
    second = await box.claim_callbacks(NOW + 22, LEASE, 10, "t3")
    assert sorted(events(second)) == [("m1", 2, "delivered"), ("m2", 2, "failed")]
    failed = next(e for e in second if e.message_id == "m2")
    assert json.loads(failed.facts)["error"] == "UNDELIV: x" and failed.created_ms == NOW + 9


async def test_a_receipt_applied_by_settle_follows_the_acceptance(store: Store):
    box = outbox(store)
    account_id = await _hooked(store, "e")
    await store.apply_receipts("aliyun", [ReceiptUpdate("biz-e", "hash-e", True)], NOW)
    await store.settle(account_id, [Settlement("e", "pending", "aliyun", 60, "biz-e")], NOW + 5, DAY)
    [first] = await box.claim_callbacks(NOW + 6, LEASE, 10, "t1")
    assert (events([first]), json.loads(first.facts)["status"]) == ([("e", 1, "accepted")], "pending")
    await box.finish_callbacks("t1", [(first.event_id, "delivered", None, None)], NOW + 7)
    [second] = await box.claim_callbacks(NOW + 8, LEASE, 10, "t1")
    assert (events([second]), json.loads(second.facts)["status"]) == ([("e", 2, "delivered")], "success")


async def test_a_claim_is_leased_and_a_finish_with_a_lost_lease_changes_nothing(store: Store):
    box = outbox(store)
    account_id = await _hooked(store, "l")
    await store.settle(account_id, [accepted("l")], NOW, DAY)
    [event] = await box.claim_callbacks(NOW, LEASE, 10, "first")
    assert await box.claim_callbacks(NOW + LEASE - 1, LEASE, 10, "second") == []
    [again] = await box.claim_callbacks(NOW + LEASE, LEASE, 10, "second")  # the lease ran out
    assert again.event_id == event.event_id
    await box.finish_callbacks("first", [(event.event_id, "delivered", None, None)], NOW + LEASE)  # lost
    assert (await box.callback_backlog(NOW + LEASE))[0] == 1
    await box.finish_callbacks("second", [(event.event_id, "delivered", None, None)], NOW + LEASE)
    assert await box.callback_backlog(NOW + LEASE) == (0, 0.0)
    assert await box.claim_callbacks(NOW + 10 * LEASE, LEASE, 10, "third") == []


async def test_a_retry_is_due_at_its_time_and_counts_the_attempt(store: Store):
    box = outbox(store)
    account_id = await _hooked(store, "r1", "r2")
    await store.settle(account_id, [accepted("r1"), accepted("r2")], NOW, DAY)
    assert await box.callback_backlog(NOW + 4000) == (2, 4.0)
    claimed = await box.claim_callbacks(NOW, LEASE, 1, "t")  # the limit holds
    [event] = claimed
    await box.finish_callbacks("t", [(event.event_id, "retry", NOW + 10_000, "HTTP 503")], NOW + 1)
    [other] = await box.claim_callbacks(NOW + 2, LEASE, 10, "t")
    assert other.event_id != event.event_id
    await box.finish_callbacks("t", [(other.event_id, "delivered", None, None)], NOW + 3)
    assert await box.claim_callbacks(NOW + 9_999, LEASE, 10, "t") == []
    [retried] = await box.claim_callbacks(NOW + 10_000, LEASE, 10, "t")
    assert (retried.event_id, retried.attempts, retried.last_error) == (event.event_id, 1, "HTTP 503")
    assert await box.callback_backlog(NOW + 10_000) == (1, 10.0)


async def test_a_stopped_event_stops_its_records_later_events(store: Store):
    box = outbox(store)
    account_id = await _hooked(store, "g", "k")
    await store.settle(
        account_id, [Settlement(mid, "pending", "aliyun", 60, "biz") for mid in ("g", "k")], NOW, DAY
    )
    await store.apply_receipts(
        "aliyun", [ReceiptUpdate("biz", "hash-g", True), ReceiptUpdate("biz", "hash-k", True)], NOW + 1
    )
    claimed = await box.claim_callbacks(NOW + 2, LEASE, 10, "t")
    gone = next(e for e in claimed if e.message_id == "g")
    kept = next(e for e in claimed if e.message_id == "k")
    await box.finish_callbacks("t", [(gone.event_id, "stopped", None, "HTTP 410")], NOW + 3)
    await box.finish_callbacks("t", [(kept.event_id, "delivered", None, None)], NOW + 3)
    assert events(await box.claim_callbacks(NOW + 4, LEASE, 10, "t")) == [("k", 2, "delivered")]
    assert await box.callback_backlog(NOW + 4) == (1, 0.003)


async def test_dead_events_are_listed_per_account_and_replayed_due_now(store: Store):
    box = outbox(store)
    account_id = await _hooked(store, *(f"d{n}" for n in range(3)))
    other = await store.create_account(new_account("other", 1000), NOW)
    await store.reserve(other.id, [NewRecord("o", "138****8001", "1", "aliyun", 60, "h-o", HOOK)], NOW)
    await store.settle(other.id, [accepted("o")], NOW, DAY)
    for n in range(3):
        await store.settle(account_id, [accepted(f"d{n}")], NOW + n, DAY)
    for event in await box.claim_callbacks(NOW + 5, LEASE, 10, "t"):
        await box.finish_callbacks("t", [(event.event_id, "dead", None, "refused: connection")], NOW + 6)
    dead, total = await box.dead_callbacks(account_id, 1, 2)
    assert total == 3 and [e.message_id for e in dead] == ["d2", "d1"]  # newest first
    assert {e.state for e in dead} == {"dead"} and dead[0].last_error == "refused: connection"
    assert [e.message_id for e in (await box.dead_callbacks(account_id, 2, 2))[0]] == ["d0"]
    assert await box.claim_callbacks(NOW + 10 * LEASE, LEASE, 10, "t") == []
    assert await box.replay_callbacks(account_id, NOW + 100) == 3
    assert await box.replay_callbacks(account_id, NOW + 100) == 0
    assert await box.dead_callbacks(account_id, 1, 10) == ([], 0)
    replayed = await box.claim_callbacks(NOW + 100, LEASE, 10, "t")
    assert sorted(e.message_id for e in replayed) == ["d0", "d1", "d2"]
    assert {(e.attempts, e.created_ms) for e in replayed} == {(0, NOW + 100)}
    assert (await box.dead_callbacks(other.id, 1, 10))[1] == 1  # the other account's stay dead
