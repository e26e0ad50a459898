"""The deliverer (``gateway.callbacks.deliverer``) against real receivers over loopback, on a real
SQLite store: signed POSTs delivered once, retried in order, stopped by a 410, dead after 24 h (on
a fake clock), one host's trouble kept from the others; and the gateway starts it, and (on either
store) gets every event of its sends to a receiver that was not even listening for a minute."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from gateway.accounts.service import AccountService
from gateway.callbacks import signing
from gateway.callbacks.deliverer import CallbackDeliverer, Settings
from gateway.keys import METRICS, STORE
from gateway.metrics import Metrics
from gateway.redis.client import RedisSource
from gateway.store.backends import build_store
from gateway.store.base import NewAccount, Store
from gateway.store.records import NewRecord, ReceiptUpdate, Settlement
from gateway.store.sqlite.store import SQLiteStore
from tests.conftest import SEND_BODY, SHARED_SECRET, add_account
from tests.fakes import tencent as fake_tencent
from tests.gateway_process import free_port
from tests.test_receipts import TEMPLATE, backends, push, tencent_report

DAY = "2024-05-01"
START = 1_714_521_600.0  # 2024-05-01 00:00:00 UTC
SECRET = "callback-secret-for-tests-0123456789"
FAST = {"poll_seconds": 0.02, "timeout": 1.0}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def ms(self) -> int:
        return int(self.now * 1000)


class Receiver:
    """A loopback receiver answering each POST with the next of ``answers`` (then 200)."""

    def __init__(self, answers: list[int] | None = None, delay: float = 0.0) -> None:
        self.answers, self.delay = list(answers or []), delay
        self.posts: list[tuple[dict[str, str], bytes, int]] = []
        self.busy = self.most_busy = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        try:
            body = await request.read()
            await asyncio.sleep(self.delay)
            status = self.answers.pop(0) if self.answers else 200
            self.posts.append((dict(request.headers), body, status))
            return web.Response(status=status)
        finally:
            self.busy -= 1

    def types(self, status: int | None = None) -> list[tuple[str, int, str]]:
        return [
            ((event := json.loads(body))["message_id"], event["sequence"], event["type"])
            for _, body, answered in self.posts
            if status is None or answered == status
        ]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """The deliverer's tests run on SQLite (its Redis side: the last test, and the contract suite)."""
    async with contextlib.AsyncExitStack() as stack:
        opened = SQLiteStore(str(tmp_path / "callbacks.db"), timeout=2.0)
        await opened.open()
        stack.push_async_callback(opened.close)
        yield opened


async def listening(aiohttp_server: Any, receiver: Receiver) -> str:
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    return str((await aiohttp_server(app)).make_url("/hook"))


async def hooked_account(store: Store, name: str, *urls: str, secret: str | None = SECRET) -> int:
    prefixes = tuple(url.rsplit("/", 1)[0] + "/" for url in urls)
    account = await store.create_account(
        NewAccount(name, f"sk_{name}", "h", 100_000, "approved", callback_prefixes=prefixes), 0
    )
    if secret:
        await store.update_account(account.api_key, callback_secret=secret)
    return account.id


async def accepted(
    store: SQLiteStore, account_id: int, clock: Clock, url: str, *ids: str, wait: bool = False
):
    records = [NewRecord(mid, "138****8000", "123456", "mock", 50, f"h-{mid}", url) for mid in ids]
    await store.reserve(account_id, records, clock.ms())
    status = "pending" if wait else "success"
    await store.settle(
        account_id, [Settlement(mid, status, "mock", 50, f"c-{mid}") for mid in ids], clock.ms(), DAY
    )


@contextlib.asynccontextmanager
async def delivering(store: Store, clock: Clock, **settings: Any) -> AsyncIterator[Metrics]:
    metrics = Metrics(["mock"])
    deliverer = CallbackDeliverer(
        store,
        store.account_by_key,
        ZoneInfo("Asia/Shanghai"),
        metrics,
        clock=clock,
        settings=Settings(**{**FAST, **settings}),
    )
    task = asyncio.create_task(deliverer.run())
    try:
        yield metrics
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(
    condition: Callable[[], bool], clock: Clock | None = None, step: float = 0.0, limit: float = 10.0
):
    """Wait for ``condition``, moving the fake clock on by ``step`` each look."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "timed out"
        if clock is not None:
            clock.now += step
        await asyncio.sleep(0.02)


def counted(metrics: Metrics, outcome: str) -> float:
    return metrics.registry.get_sample_value("smsedge_callbacks_total", {"outcome": outcome}) or 0.0


async def test_an_event_is_posted_once_signed_with_the_documented_body(store, aiohttp_server):
    receiver, clock = Receiver(), Clock()
    url = await listening(aiohttp_server, receiver)
    account_id = await hooked_account(store, "shop", url)
    await accepted(store, account_id, clock, url, "m1")
    async with delivering(store, clock) as metrics:
        await until(lambda: receiver.posts)
        await asyncio.sleep(0.2)  # time for a second POST, were there one
        assert counted(metrics, "delivered") == 1
    [(headers, body, _)] = receiver.posts
    assert signing.verify(
        SECRET, headers[signing.HEADER_TIMESTAMP], headers[signing.HEADER_SIGNATURE], body, START
    )
    assert not signing.verify(
        "another-secret", headers[signing.HEADER_TIMESTAMP], headers[signing.HEADER_SIGNATURE], body, START
    )
    event = json.loads(body)
    assert headers[signing.HEADER_EVENT_ID] == event["event_id"]
    assert list(event) == [
        "event_id",
        "type",
        "sequence",
        "message_id",
        "phone",
        "template_id",
        "provider",
        "status",
        "error_code",
        "error_message",
        "segments",
        "price",
        "occurred_at",
        "account",
    ]
    assert {k: event[k] for k in list(event)[1:]} == {
        "type": "accepted",
        "sequence": 1,
        "message_id": "m1",
        "phone": "138****8000",
        "template_id": "123456",
        "provider": "mock",
        "status": "success",
        "error_code": None,
        "error_message": None,
        "segments": 1,
        "price": 0.05,  # yuan, a JSON number as GET /api/sms/records shows it
        "occurred_at": "2024-05-01T08:00:00.000+08:00",
        "account": "shop",
    }
    assert await store.callback_backlog(clock.ms()) == (0, 0.0)


async def test_a_receiver_failing_then_recovering_gets_every_event_in_order(store, aiohttp_server):
    receiver, clock = Receiver([500, 503, 502]), Clock()
    url = await listening(aiohttp_server, receiver)
    account_id = await hooked_account(store, "shop", url)
    await accepted(store, account_id, clock, url, "m1", wait=True)
    await store.apply_receipts(
        "mock", [ReceiptUpdate("c-m1", "h-m1", False, "UNDELIV: 13800138000 off")], clock.ms()
    )
    async with delivering(
        store, clock, schedule=lambda created_ms, attempts, now_ms, rng: now_ms + 1000
    ) as metrics:
        await until(lambda: len(receiver.types(200)) == 2, clock, step=0.5)
        assert counted(metrics, "retried") == 3
    assert receiver.types() == [("m1", 1, "accepted")] * 4 + [("m1", 2, "failed")]
    first_id = json.loads(receiver.posts[0][1])["event_id"]
    assert {json.loads(body)["event_id"] for _, body, _ in receiver.posts[:4]} == {first_id}  # stable
    failed = json.loads(receiver.posts[-1][1])
    assert (failed["status"], failed["error_code"], failed["error_message"]) == (
        "failed",
        "UNDELIV",
        "138****8000 off",
    )


async def test_a_410_stops_the_records_events_to_that_url(store, aiohttp_server):
    receiver, clock = Receiver([410]), Clock()
    url = await listening(aiohttp_server, receiver)
    account_id = await hooked_account(store, "shop", url)
    await accepted(store, account_id, clock, url, "m1", wait=True)
    await store.apply_receipts("mock", [ReceiptUpdate("c-m1", "h-m1", True)], clock.ms())
    async with delivering(store, clock) as metrics:
        await until(lambda: counted(metrics, "refused") == 1)
        await asyncio.sleep(0.2)
    assert receiver.types() == [("m1", 1, "accepted")]
    assert await store.callback_backlog(clock.ms()) == (0, 0.0)


async def test_an_event_is_dead_after_24_hours_of_failures(store, aiohttp_server):
    receiver, clock = Receiver([500] * 100), Clock()
    url = await listening(aiohttp_server, receiver)
    account_id = await hooked_account(store, "shop", url)
    await accepted(store, account_id, clock, url, "m1")
    # The fake clock runs 30 min a look: a lease longer than the whole test keeps a POST in flight
    # from being claimed again (at real speed a POST ends long before its 30 s lease).
    async with delivering(store, clock, lease_ms=10 * 86_400_000) as metrics:
        await until(lambda: counted(metrics, "dead") == 1, clock, step=1800.0)
    dead, total = await store.dead_callbacks(account_id, 1, 10)
    assert total == 1 and dead[0].last_error == "HTTP 500"
    assert 6 <= len(receiver.posts) == dead[0].attempts <= 10
    assert counted(metrics, "retried") == len(receiver.posts) - 1


async def test_a_slow_host_is_capped_and_does_not_hold_up_another(store, aiohttp_server):
    slow, quick, clock = Receiver(delay=0.3), Receiver(), Clock()
    slow_url = await listening(aiohttp_server, slow)
    quick_url = await listening(aiohttp_server, quick)
    slow_id = await hooked_account(store, "slow", slow_url)
    quick_id = await hooked_account(store, "quick", quick_url)
    await accepted(store, slow_id, clock, slow_url, *(f"s{n}" for n in range(12)))
    await accepted(store, quick_id, clock, quick_url, *(f"q{n}" for n in range(5)))
    loop = asyncio.get_running_loop()
    async with delivering(store, clock, per_host=2, max_queue=8):
        started = loop.time()
        await until(lambda: len(quick.posts) == 5)
        assert loop.time() - started < 0.6  # not behind the slow host's 12 × 0.3 s
        await until(lambda: len(slow.posts) == 12, clock, step=0.05, limit=15)  # the turned-away come back
    assert slow.most_busy == 2


async def test_a_failing_hosts_circuit_opens_and_leaves_its_events_unposted(store, aiohttp_server):
    receiver, clock = Receiver([500] * 100), Clock()
    url = await listening(aiohttp_server, receiver)
    account_id = await hooked_account(store, "shop", url)
    await accepted(store, account_id, clock, url, *(f"m{n}" for n in range(6)))
    async with delivering(store, clock, per_host=1, circuit_failures=2, circuit_cooldown=600.0) as metrics:
        await until(lambda: len(receiver.posts) == 2)
        await asyncio.sleep(0.3)
        assert len(receiver.posts) == 2  # open: the other 4 are not posted
        depth = metrics.registry.get_sample_value("smsedge_callback_queue_depth")
        assert depth == 6
        clock.now += 601  # cooled down (and every lease has run out): trials again
        await until(lambda: len(receiver.posts) == 3)
        assert metrics.registry.get_sample_value("smsedge_callback_oldest_age_seconds") >= 601


async def test_an_account_without_a_callback_secret_sends_nothing_unsigned(store, aiohttp_server):
    receiver, clock = Receiver(), Clock()
    url = await listening(aiohttp_server, receiver)
    account_id = await hooked_account(store, "unsigned", url, secret=None)
    await accepted(store, account_id, clock, url, "m1")
    async with delivering(store, clock) as metrics:
        await until(lambda: counted(metrics, "retried") == 1)
    assert receiver.posts == []
    [event] = await store.claim_callbacks(clock.ms() + 3_600_000, 1000, 10, "look")
    assert "no callback secret" in (event.last_error or "")


async def test_the_gateway_delivers_a_sends_events(make_client, aiohttp_server, store_backend):
    receiver = Receiver()
    url = await listening(aiohttp_server, receiver)
    prefix = url.rsplit("/", 1)[0] + "/"
    client = await make_client(ratelimit={"phone": []}, **store_backend)
    account, headers = await add_account(client, "team", balance_milli=10_000, callback_prefixes=(prefix,))
    await AccountService(client.app[STORE]).set_callback_secret("test", account.api_key)
    sent = await client.post("/api/sms/send", json={**SEND_BODY, "callback_url": url}, headers=headers)
    assert sent.status == 200
    await until(lambda: receiver.posts, limit=5)
    event = json.loads(receiver.posts[0][1])
    assert (event["type"], event["message_id"]) == ("accepted", (await sent.json())["data"]["message_id"])


async def serials_of_tencent(aiohttp_server: Any, serials: dict[str, str]) -> str:
    """A fake Tencent noting each accepted number's SerialNo (what its receipt names) in ``serials``."""

    @web.middleware
    async def note(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        for status in json.loads(response.body)["Response"].get("SendStatusSet", []):
            serials[status["PhoneNumber"].removeprefix("+86")] = status["SerialNo"]
        return response

    app = fake_tencent.create_app(fake_tencent.TencentUpstream())
    app.middlewares.append(note)
    return str((await aiohttp_server(app)).make_url("/"))


async def test_a_receiver_down_for_a_minute_gets_every_event_afterwards_in_order(
    make_client, aiohttp_server, store_backend
):
    """Nothing listens on the receiver's port while a gateway accepts sends and their receipts:
    each POST is a refused connection, retried on the real schedule; a minute later (on the
    gateway's clock) the receiver starts there and gets every event once, each record's in order."""
    clock, serials, port = Clock(), {}, free_port()
    url, phones = f"http://127.0.0.1:{port}/hook", ["13800138001", "13900139002", "13700137003"]
    tencent_url = await serials_of_tencent(aiohttp_server, serials)
    upstreams = {"tencent_url": tencent_url, "aliyun_url": "http://127.0.0.1:9/"}
    client = await make_client(
        clock=clock, ratelimit={"phone": []}, **{**backends(upstreams), **store_backend}
    )
    account, headers = await add_account(
        client, "team", balance_milli=10_000, callback_prefixes=(f"http://127.0.0.1:{port}/",)
    )
    _, secret = await AccountService(client.app[STORE]).set_callback_secret("test", account.api_key)
    batch = await client.post(
        "/api/sms/batch-send", json={"phones": phones, **TEMPLATE, "callback_url": url}, headers=headers
    )
    single = await client.post(
        "/api/sms/send", json={"phone": "13600136004", **TEMPLATE, "callback_url": url}, headers=headers
    )
    assert (batch.status, single.status) == (200, 200)
    sent = [r["message_id"] for r in (await batch.json())["data"]["results"]]
    sent.append((await single.json())["data"]["message_id"])
    reports = [tencent_report(phone, serials[phone]) for phone in [*phones, "13600136004"]]
    assert (await push(client, "tencent", reports)).status == 200
    metrics = client.app[METRICS]

    await until(lambda: counted(metrics, "retried") >= 4)  # each record's accepted: refused
    clock.now += 60  # a minute on: the retries (about 10 s after the first) are refused too
    await until(lambda: counted(metrics, "retried") >= 5)
    await asyncio.sleep(0.3)  # the rest of that round: refused, or turned away by the open circuit
    refused_posts = counted(metrics, "retried")

    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    await aiohttp_server(app, port=port)
    clock.now += 75  # past every retry (at most 72 s after the last) and the circuit's minute
    await until(lambda: len(receiver.posts) == 8)
    await asyncio.sleep(0.3)  # time for a duplicate, were there one (the clock stands: no lease runs out)

    assert counted(metrics, "retried") == refused_posts >= 5  # the refused connections, counted
    assert counted(metrics, "delivered") == 8
    events = [json.loads(body) for _, body, _ in receiver.posts]
    assert len({event["event_id"] for event in events}) == 8  # each once
    for (posted, body, _), event in zip(receiver.posts, events, strict=True):
        assert posted[signing.HEADER_EVENT_ID] == event["event_id"]
        assert signing.verify(
            secret, posted[signing.HEADER_TIMESTAMP], posted[signing.HEADER_SIGNATURE], body, clock.now
        )
    by_record = {mid: [(e["sequence"], e["type"]) for e in events if e["message_id"] == mid] for mid in sent}
    assert by_record == {mid: [(1, "accepted"), (2, "delivered")] for mid in sent}  # none invented
    assert await client.app[STORE].callback_backlog(int(clock.now * 1000)) == (0, 0.0)


async def test_two_workers_on_redis_post_each_event_once(make_config, redis_server, aiohttp_server):
    receiver, clock = Receiver(delay=0.05), Clock()
    url = await listening(aiohttp_server, receiver)
    config = make_config(
        store={"backend": "redis"}, server={"secret_key": SHARED_SECRET}, redis={"url": redis_server.url}
    )
    async with RedisSource(config.redis) as first_redis, RedisSource(config.redis) as second_redis:
        first, second = build_store(config, first_redis), build_store(config, second_redis)
        account_id = await hooked_account(first, "fleet", url)
        await accepted(first, account_id, clock, url, *(f"m{n}" for n in range(20)))
        async with delivering(first, clock), delivering(second, clock):
            await until(lambda: len(receiver.posts) >= 20, clock, step=0.05)  # deferred ones come back
            await asyncio.sleep(0.3)  # time for a duplicate, were there one
    ids = [json.loads(body)["event_id"] for _, body, _ in receiver.posts]
    assert len(ids) == len(set(ids)) == 20


async def test_the_deliverer_stops_when_cancelled_even_as_it_is_woken(store):
    """A cancellation that comes as the deliverer is woken ends it (``asyncio.wait_for`` would
    swallow it, and the app's shutdown would wait forever)."""
    for _ in range(30):
        deliverer = CallbackDeliverer(
            store, store.account_by_key, ZoneInfo("UTC"), Metrics([]), settings=Settings(poll_seconds=5.0)
        )
        task = asyncio.create_task(deliverer.run())
        await asyncio.sleep(0.01)  # waiting to be woken
        deliverer._wake.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 2)
        assert task.done()
