"""The Redis store's own promises: key names, privacy, outages (the shared contract is elsewhere).

Keys: all under ``redis.key_prefix``, one hash tag per account (the rate limiter's too), so each
script stays in one Redis-Cluster slot. Privacy: no full number and no API secret in Redis, after
real sends through a running gateway. Outages: a stopped or frozen Redis is a quick 503, and the
same gateway serves again once Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import AsyncIterator

import pytest
import yaml
from redis.asyncio import Redis
from redis.crc import key_slot

from gateway.accounts.listed import bootstrap_accounts
from gateway.accounts.service import AccountService
from gateway.config.model import RedisConfig
from gateway.keys import CONFIG, STORE
from gateway.redis.client import redis_client
from gateway.store.base import NewAccount, StoreUnavailable
from gateway.store.cache import CachedStore
from gateway.store.records import NewRecord, ReceiptUpdate, RecordQuery, Settlement
from gateway.store.redis.store import RedisStore
from tests.conftest import DEMO_HEADERS, DEMO_SECRET, SEND_BODY, SHARED_SECRET, add_account, default_document
from tests.gateway_process import run_py

NOW = 1_714_521_600_000
DAY = "2024-05-01"
PREFIX = "smsedge:"
PHONES = ["13800138000", "13900139001", "13700137002"]


@pytest.fixture
async def store(redis_server) -> AsyncIterator[RedisStore]:
    client = redis_client(RedisConfig(url=redis_server.url, key_prefix=PREFIX, timeout=0.3))
    opened = RedisStore(client, PREFIX)
    await opened.open()
    yield opened
    await opened.close()
    await client.aclose()  # the store's owner closes the client, never the store


@pytest.fixture
async def raw(redis_server) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


async def dump(raw: Redis) -> dict[str, object]:
    """Every key with its whole value, whatever its type."""
    readers = {
        "string": raw.get,
        "hash": raw.hgetall,
        "set": lambda key: raw.sort(key, alpha=True),
        "zset": lambda key: raw.zrange(key, 0, -1, withscores=True),
        "list": lambda key: raw.lrange(key, 0, -1),
        "stream": raw.xrange,
    }
    return {key: await readers[await raw.type(key)](key) async for key in raw.scan_iter()}


def redis_gateway(server_url: str, **redis: object) -> dict[str, object]:
    return {
        "store": {"backend": "redis"},
        "redis": {"url": server_url, **redis},
        "server": {"secret_key": SHARED_SECRET},
    }


# -- keys ------------------------------------------------------------------------------------------


async def test_keys_are_prefixed_and_each_account_lives_in_one_slot(store: RedisStore, raw: Redis):
    ids = []
    for name in ("north", "south"):
        account = await store.create_account(
            NewAccount(name, f"sk_{name}", "scrypt$x", 10_000, "approved"), NOW
        )
        ids.append(account.id)
        records = [NewRecord(f"{name}-{i}", "138****8000", "1", "aliyun", 60, f"h{i}") for i in range(3)]
        await store.reserve(account.id, records, NOW)
        await store.apply_receipts("aliyun", [ReceiptUpdate(f"biz-{name}", "h0", True)], NOW)
        await store.settle(
            account.id,
            [
                Settlement(f"{name}-0", "pending", "aliyun", 60, f"biz-{name}"),
                Settlement(f"{name}-1", "failed", "aliyun", 0, error="E: x"),
                Settlement(f"{name}-2", "pending", "aliyun", 60, f"biz-{name}"),
            ],
            NOW,
            DAY,
        )
    await store.apply_receipts("aliyun", [ReceiptUpdate("never-sent", "h9", True)], NOW)

    keys = [key async for key in raw.scan_iter()]
    assert all(key.startswith(PREFIX) for key in keys), keys
    slots: dict[str, set[int]] = {}
    for key in keys:
        rest = key.removeprefix(PREFIX)
        tagged = re.fullmatch(r"\{((?:a|rc):[0-9a-f]+)\}:[a-z_:0-9]+", rest)
        if tagged:
            slots.setdefault(tagged.group(1), set()).add(key_slot(key.encode()))
        else:  # the global lookups: single-key commands only
            assert re.fullmatch(r"account_seq|accounts|key:sk_\w+|name:\w+|parked_receipts", rest), key
    for account_id in ids:
        # The rate limiter's bucket of the account shares the slot too.
        bucket = key_slot(f"{PREFIX}{{a:{account_id}}}:bucket".encode())
        assert slots[f"a:{account_id}"] == {bucket}
    receipts = [tag for tag in slots if tag.startswith("rc:")]
    assert len(receipts) == 5 and all(len(slots[tag]) == 1 for tag in receipts)  # 2 × 2 sent, 1 not
    # Early receipts expire: a day when they name nothing, a minute once settle has applied them.
    ttls = sorted([await raw.pttl(key) for key in keys if key.endswith(":early")])
    assert len(ttls) == 3 and 0 < ttls[0] <= ttls[1] <= 60_000 < ttls[2] <= 24 * 3600 * 1000
    assert (await store.records(ids[0], RecordQuery(status="success"))).total == 1


async def test_a_script_run_twice_after_a_lost_reply_changes_nothing_more(store: RedisStore):
    """The client retries once on a lost connection, which may follow a script that did run."""
    account = await store.create_account(NewAccount("twice", "sk_twice", "h", 1000, "approved"), NOW)
    records = [NewRecord(f"m{i}", "138****8000", "1", "aliyun", 100, f"h{i}") for i in range(2)]
    assert await store.reserve(account.id, records, NOW) is True
    assert await store.reserve(account.id, records, NOW) is True  # the retry: already reserved
    assert (await store.account_by_key("sk_twice")).balance_milli == 800
    assert (await store.records(account.id, RecordQuery())).total == 2

    operation = store.keys.operation(account.id, "op-1")
    for _ in range(2):
        await store._top_up(keys=[store.keys.account(account.id), operation], args=[500, 60_000])
    assert (await store.account_by_key("sk_twice")).balance_milli == 1300

    await store.apply_receipts("aliyun", [ReceiptUpdate("biz", "h0", False, "E: early")], NOW)
    settled = [Settlement(f"m{i}", "pending", "aliyun", 60, "biz") for i in range(2)]
    for _ in range(2):  # the second run only links m1 again, harmlessly
        await store.settle(account.id, settled, NOW, DAY)
    assert (await store.account_by_key("sk_twice")).balance_milli == 1300 + 2 * 40
    page = await store.records(account.id, RecordQuery())
    assert {r.message_id: (r.status, r.error) for r in page.records} == {
        "m0": ("failed", "E: early"),
        "m1": ("pending", None),
    }
    assert (await store.apply_receipts("aliyun", [ReceiptUpdate("biz", "h1", True)], NOW)).changed == 1

    # Linking hands a parked receipt back again when run again (it is not deleted, it expires).
    await store.apply_receipts("aliyun", [ReceiptUpdate("later", "h5", True)], NOW)
    keys = list(store.keys.receipt("aliyun", "later", "h5"))
    replies = [await store._receipts._link(keys=keys, args=[f"{account.id}:9", 60_000]) for _ in range(2)]
    assert replies[0] == replies[1] == f"{NOW}|1|".encode()


async def test_parked_receipts_stay_under_the_cap_and_linking_unparks(store: RedisStore, raw: Redis):
    store.max_parked_receipts = 5
    for second in range(4):
        await store.apply_receipts(
            "aliyun", [ReceiptUpdate(f"biz-{second}-{i}", "h", True) for i in range(3)], NOW + second * 1000
        )

    async def parked() -> list[str]:
        return sorted([key async for key in raw.scan_iter(f"{PREFIX}*:early")])

    index = store.keys.parked_receipts
    newest = [store.keys.receipt("aliyun", f"biz-3-{i}", "h")[1] for i in range(3)]
    assert len(await parked()) == 5 and sorted(await raw.zrange(index, 0, -1)) == await parked()
    assert set(newest) <= set(await parked())
    # A parked receipt claimed by settle no longer counts against the cap.
    account = await store.create_account(NewAccount("cap", "sk_cap", "h", 1000, "approved"), NOW)
    await store.reserve(account.id, [NewRecord("m", "138****8000", "1", "aliyun", 60, "h")], NOW)
    await store.settle(account.id, [Settlement("m", "pending", "aliyun", 60, "biz-3-0")], NOW, DAY)
    assert await raw.zscore(index, newest[0]) is None and await raw.zcard(index) == 4


async def test_every_operation_is_store_unavailable_while_redis_is_down(store: RedisStore, redis_server):
    account = await store.create_account(NewAccount("n", "sk_n", "h", 100, "approved"), NOW)
    redis_server.stop()
    calls = [
        store.ping(),
        store.account_by_key("sk_n"),
        store.list_accounts(),
        store.top_up("sk_n", 1),
        store.update_account("sk_n", disabled=True),
        store.today_sent(account.id, DAY),
        store.reserve(account.id, [NewRecord("m", "138****8000", "1", "mock", 1)], NOW),
        store.settle(account.id, [Settlement("m", "success", "mock", 1)], NOW, DAY),
        store.apply_receipts("mock", [ReceiptUpdate("c", "h", True)], NOW),
        store.records(account.id, RecordQuery()),
        store.create_account(NewAccount("m", "sk_m", "h", 0, "approved"), NOW),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await call
        assert time.monotonic() - started < 2


# -- privacy ---------------------------------------------------------------------------------------


async def test_no_full_number_and_no_secret_is_stored(make_client, redis_server, raw: Redis):
    client = await make_client(**redis_gateway(redis_server.url, key_prefix=PREFIX))
    _, headers = await add_account(client, "second", balance_milli=10_000)
    response = await client.post(
        "/api/sms/send", headers=DEMO_HEADERS, json={**SEND_BODY, "phone": PHONES[0]}
    )
    assert response.status == 200, await response.text()
    response = await client.post(
        "/api/sms/batch-send",
        headers=headers,
        json={"phones": ["+86" + PHONES[1], PHONES[2]], "template_id": "123456"},
    )
    assert response.status == 200 and (await response.json())["data"]["success_count"] == 2
    listed = await client.get("/api/sms/records", headers=headers)
    assert (await listed.json())["data"]["total"] == 2
    info = await (await client.get("/api/account/info", headers=DEMO_HEADERS)).json()
    assert (info["data"]["total_sent"], info["data"]["today_sent"]) == (1, 1)

    stored = await dump(raw)
    assert all(key.startswith(PREFIX) for key in stored)
    text = json.dumps(stored, ensure_ascii=False)
    for phone in PHONES:
        assert phone not in text
        assert phone[:3] + "****" + phone[-4:] in text  # masked, as the records show it
    assert DEMO_SECRET not in text and headers["X-API-Secret"] not in text


# -- outages ---------------------------------------------------------------------------------------


async def _send(client, phone: str):
    started = time.monotonic()
    response = await client.post("/api/sms/send", headers=DEMO_HEADERS, json={**SEND_BODY, "phone": phone})
    return response.status, await response.json(), time.monotonic() - started


async def _until_up(client) -> None:
    """Redis is back: calls fail fast until the client's probe has had an answer."""
    async with asyncio.timeout(5):
        while client.app[STORE].health.down:
            await asyncio.sleep(0.05)


async def _ready(client) -> tuple[int, dict]:
    response = await client.get("/readyz")
    return response.status, await response.json()


async def test_a_stopped_redis_is_a_quick_503_and_service_resumes_by_itself(make_client, redis_server):
    client = await make_client(**redis_gateway(redis_server.url, timeout=0.2))
    assert (await _send(client, PHONES[0]))[0] == 200
    redis_server.stop()
    status, body, took = await _send(client, PHONES[1])
    assert (status, body["code"]) == (503, "UNAVAILABLE") and took < 2
    for path in ("/api/account/info", "/api/sms/records"):
        response = await client.get(path, headers=DEMO_HEADERS)
        assert response.status == 503 and (await response.json())["code"] == "UNAVAILABLE"
    status, body = await _ready(client)
    assert status == 503 and body["failed"] == ["store"] and body["checks"]["store"] == "unavailable"

    redis_server.start()  # same port; a test server keeps no data, so the demo account is re-seeded
    await _until_up(client)
    assert (await _ready(client))[0] == 200
    await bootstrap_accounts(client.app[STORE], client.app[CONFIG].accounts)
    status, body, _ = await _send(client, PHONES[2])
    assert status == 200 and body["success"] is True


async def test_a_frozen_redis_is_a_503_within_the_timeout_never_a_hang(make_client, redis_server):
    client = await make_client(**redis_gateway(redis_server.url, timeout=0.2))
    assert (await _send(client, PHONES[0]))[0] == 200
    redis_server.process.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        status, body, took = await _send(client, PHONES[1])
        assert (status, body["code"]) == (503, "UNAVAILABLE") and took < 3
        assert (await _ready(client))[0] == 503
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    await _until_up(client)
    status, body, _ = await _send(client, PHONES[2])
    assert status == 200, body
    info = await (await client.get("/api/account/info", headers=DEMO_HEADERS)).json()
    assert info["data"]["total_sent"] == 2


# -- the accounts command --------------------------------------------------------------------------


def test_accounts_cli_works_on_the_redis_store(tmp_path, redis_server):
    document = default_document()
    for section, values in redis_gateway(redis_server.url, key_prefix="cli:").items():
        document[section] = {**document.get(section, {}), **values}
    config = tmp_path / "redis.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")

    def run(*args: str) -> list[dict]:
        result = run_py("accounts", *args, "--config", config)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    [created] = run("create", "--name", "ops", "--balance", "12.5", "--rate", "5", "--burst", "10")
    assert created["balance"] == 12.5 and created["api_secret"]
    [topped] = run("topup", "--key", created["api_key"], "--amount", "0.045")
    assert topped["balance"] == 12.545
    [changed] = run("set", "--key", created["api_key"], "--disabled", "true")
    assert changed["disabled"] is True and changed["ratelimit"] == {"rate": 5.0, "burst": 10}
    assert [a["name"] for a in run("list")] == ["ops"]
    duplicate = run_py("accounts", "create", "--name", "ops", "--config", config)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr


async def test_a_send_through_the_cache_reads_no_account_back(store, raw):
    """Reserve and settle tell the cache what they left the account at, so the next request of
    the account is served from memory: the send path costs no read of the account hash."""
    cached = CachedStore(store)
    account = await store.create_account(
        NewAccount(
            name="shop",
            api_key="sk_shop",
            secret_hash="h",
            balance_milli=1000,
            verification_status="approved",
        ),
        NOW,
    )
    await cached.account_by_key("sk_shop")
    reads_before = await _account_reads(raw)
    assert await cached.reserve(account.id, [NewRecord("m0", "138****8000", "t", "mock", 70)], NOW)
    await cached.settle(account.id, [Settlement("m0", "success", "mock", 50)], NOW, DAY)
    after = await cached.account_by_key("sk_shop")
    assert (after.balance_milli, after.total_sent) == (950, 1)
    assert await cached.today_sent(account.id, DAY) == 1
    assert await _account_reads(raw) == reads_before
    assert after == await store.account_by_key("sk_shop")  # and it is what Redis holds


async def _account_reads(raw: Redis) -> int:
    """HGETALLs so far: how the store reads an account (its scripts use none)."""
    return (await raw.info("commandstats")).get("cmdstat_hgetall", {}).get("calls", 0)


async def test_concurrent_top_ups_are_audited_as_one_chain_of_steps(store):
    """Each top-up's audit entry says what that top-up did: before = after - amount, with ``after``
    the balance its own script set, so 20 at once give 20 distinct steps and none twice."""
    service = AccountService(store)
    account = await store.create_account(
        NewAccount(
            name="shop", api_key="sk_shop", secret_hash="h", balance_milli=0, verification_status="approved"
        ),
        NOW,
    )
    answers = await asyncio.gather(*(service.top_up("cli", "sk_shop", 1000) for _ in range(20)))
    page = await store.audit_page(1, 100)
    steps = sorted(
        (entry.before["balance"], entry.after["balance"]) for entry in page.entries if entry.action == "topup"
    )
    assert steps == [(float(n), float(n + 1)) for n in range(20)]
    assert sorted(answer.balance_milli for answer in answers) == [1000 * n for n in range(1, 21)]
    assert (await store.account_by_key("sk_shop")).balance_milli == 20_000 == account.balance_milli + 20_000


async def test_account_info_shows_the_other_gateway_s_sends_right_after_its_own(make_client, redis_server):
    """Two gateways on one Redis: a gateway's own send tells its cache the balance that send left,
    which the other gateway's later send has already changed. Account info must not show that
    older balance: it reads the account again after such a write."""
    overrides = {
        "store": {"backend": "redis"},
        "redis": {"url": redis_server.url},
        "server": {"secret_key": SHARED_SECRET},
    }
    first, second = await make_client(**overrides), await make_client(**overrides)
    before = (await (await first.get("/api/account/info", headers=DEMO_HEADERS)).json())["data"]
    for client, phone in ((first, "13800138001"), (second, "13800138002")):
        sent = await client.post("/api/sms/send", json={**SEND_BODY, "phone": phone}, headers=DEMO_HEADERS)
        assert sent.status == 200
    shown = (await (await first.get("/api/account/info", headers=DEMO_HEADERS)).json())["data"]
    assert shown["total_sent"] == before["total_sent"] + 2
    assert shown["today_sent"] == before["today_sent"] + 2
    assert round(before["balance"] - shown["balance"], 2) == 0.10
