"""A hung Redis costs a request at most ``redis.timeout`` in all, and nothing once the outage is known.

Hung means SIGSTOPped: the kernel still accepts connections, nobody answers. The first request that
meets it waits one timeout (never one per Redis call, never a retry on top); from then on every
Redis call of the store and the rate limiter, which share one client, fails at once until a probe
gets an answer, and service resumes by itself after SIGCONT. Times are wall-clock with coarse
bounds: the old behaviour took four to eight timeouts per request.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from redis.exceptions import ResponseError

from gateway.config.model import RedisConfig
from gateway.keys import LIMITER, REDIS, STORE
from gateway.ratelimit import LimiterUnavailable
from gateway.ratelimit.redis import RedisLimiter
from gateway.redis.client import redis_client
from gateway.redis.health import RedisHealth
from gateway.store.base import NewAccount, StoreUnavailable
from gateway.store.redis.store import RedisStore
from tests.conftest import DEMO_HEADERS, SEND_BODY, SHARED_SECRET
from tests.redis_topologies import ClusterServers, SentinelGroup

# Keeps Redis itself busy (a script blocks the server) for ARGV[1] microseconds.
BUSY_SCRIPT = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > tonumber(ARGV[1])
"""
TIMEOUT = 0.5
FIRST = 1.5 * TIMEOUT  # the request that finds the outage: one timeout and some slack
KNOWN = 0.2 * TIMEOUT  # any request once the outage is known
RECOVERY = 3.0  # after SIGCONT, until the probe has cleared the outage


@contextmanager
def frozen(redis_server) -> Iterator[None]:
    """Redis hung for the duration; always thawed again, so the server can be stopped."""
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        redis_server.process.send_signal(signal.SIGCONT)


def gateway(redis_server, store: str, on_backend_error: str) -> dict[str, object]:
    return {
        "store": {"backend": store},
        "ratelimit": {
            "backend": "redis",
            "on_backend_error": on_backend_error,
            "phone": [{"limit": 1000, "seconds": 60}],
        },  # the per-number windows run too
        "redis": {"url": redis_server.url, "timeout": TIMEOUT},
        "server": {"secret_key": SHARED_SECRET},
    }


async def send(client, n: int) -> tuple[int, bool, float]:
    """Status, whether the limiter answered (its headers are there), and the wall time taken."""
    started = time.monotonic()
    response = await client.post(
        "/api/sms/send", headers=DEMO_HEADERS, json={**SEND_BODY, "phone": f"138{n:08d}"}
    )
    await response.read()
    return response.status, "RateLimit-Limit" in response.headers, time.monotonic() - started


async def ready(client) -> tuple[int, list[str], float]:
    started = time.monotonic()
    response = await client.get("/readyz")
    body = await response.json()
    return response.status, body["failed"], time.monotonic() - started


async def until_recovered(client, first: int) -> float:
    """Send until a send is served with limits again; the time that took."""
    started = time.monotonic()
    n = first
    while True:
        status, limited, _ = await send(client, n)
        if status == 200 and limited:
            return time.monotonic() - started
        assert time.monotonic() - started < RECOVERY, f"still {status} after SIGCONT"
        n += 1
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("store", "on_backend_error", "answer"),
    [
        ("sqlite", "deny", 503),  # the limiter's 503
        ("sqlite", "allow", 200),  # fail open: served, unlimited
        ("redis", "deny", 503),  # the store's 503: nothing is sent that cannot be recorded
        ("redis", "allow", 503),
    ],
)
async def test_a_hung_redis_costs_one_timeout_then_nothing_until_it_answers(
    make_client, redis_server, store, on_backend_error, answer
):
    client = await make_client(**gateway(redis_server, store, on_backend_error))
    assert (await send(client, 0))[:2] == (200, True)
    failed = ["ratelimit", "store"] if store == "redis" else ["ratelimit"]

    with frozen(redis_server):
        status, limited, took = await send(client, 1)
        assert (status, limited) == (answer, False) and took <= FIRST, took
        for n in range(2, 5):  # the outage is known: no request waits on Redis at all
            status, limited, took = await send(client, n)
            assert (status, limited) == (answer, False) and took < KNOWN, took
        status, names, took = await ready(client)
        assert (status, names) == (503, failed) and took < KNOWN, took

    assert await until_recovered(client, 10) < RECOVERY


@pytest.mark.parametrize("mode", ["cluster", "sentinel"])
async def test_a_hung_server_costs_one_timeout_in_every_mode(make_client, tmp_path, mode):
    """The same bound on a cluster (the master holding the account hangs) and behind a Sentinel
    (the primary hangs; the Sentinel is told to wait a minute before a failover). A timeout of a
    second here: a cluster client's first call also learns the slot map (tens of milliseconds,
    more on a loaded test machine) and the app's start-up makes it."""
    timeout = 1.0
    if mode == "cluster":
        servers = ClusterServers(tmp_path / "cluster").start()
        section = {"mode": mode, "url": servers.url}
    else:
        servers = SentinelGroup(tmp_path / "sentinel", down_after_ms=60_000).start()
        section = {"mode": mode, "sentinels": servers.sentinels, "service": servers.service}
    try:
        document = gateway(servers.nodes[0] if mode == "cluster" else servers.primary, "redis", "deny")
        client = await make_client(**{**document, "redis": {**section, "timeout": timeout}})
        assert (await send(client, 0))[:2] == (200, True)
        hung = servers.owner("smsedge:{a:1}:account") if mode == "cluster" else servers.primary
        with frozen(hung):
            status, _, took = await send(client, 1)
            assert status == 503 and took <= 1.5 * timeout, took
            for n in range(2, 5):
                status, _, took = await send(client, n)
                assert status == 503 and took < KNOWN, took
        assert await until_recovered(client, 10) < RECOVERY
    finally:
        servers.stop()


async def test_the_app_gives_the_store_and_the_limiter_its_one_client(make_client, redis_server):
    client = await make_client(**gateway(redis_server, "redis", "allow"))
    store, limiter = client.app[STORE], client.app[LIMITER].backend
    assert store.client is client.app[REDIS].client()
    assert limiter.health is store.health  # one client: one outage state


async def test_the_store_and_the_limiter_share_one_outage(redis_server):
    """An outage the limiter met makes the store fail fast too: they share the client's health."""
    client = redis_client(RedisConfig(url=redis_server.url, timeout=TIMEOUT))
    store = RedisStore(client, "smsedge:")
    await store.open()
    limiter = RedisLimiter(client, "t:")
    try:
        await store.create_account(NewAccount("a", "sk_a", "h", 100, "approved"), 0)
        assert (await limiter.take(1, 1.0, 2, 1)).allowed
        with frozen(redis_server):
            started = time.monotonic()
            with pytest.raises(LimiterUnavailable):
                await limiter.take(1, 1.0, 2, 1)
            assert time.monotonic() - started <= FIRST
            assert client.health.down
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="outage"):
                await store.account_by_key("sk_a")
            with pytest.raises(StoreUnavailable):
                await store.ping()
            with pytest.raises(LimiterUnavailable):
                await limiter.ping()
            assert time.monotonic() - started < KNOWN
        deadline = time.monotonic() + RECOVERY
        while client.health.down:
            assert time.monotonic() < deadline, "the probe never cleared the outage"
            await asyncio.sleep(0.05)
        assert (await store.account_by_key("sk_a")).name == "a"
        assert (await limiter.take(1, 1.0, 2, 1)).allowed
    finally:
        await store.close()  # not its client: the client stays open
        await client.aclose()  # stops the probe, if one still runs


async def test_calls_queued_for_a_pooled_connection_wait_no_longer(redis_server):
    """More calls at once than the pool holds connections (64): the queued ones still wait at most
    one timeout in all, the wait for a connection included."""
    client = redis_client(RedisConfig(url=redis_server.url, timeout=TIMEOUT))
    store = RedisStore(client, "smsedge:")
    await store.open()
    try:
        assert await store.account_by_key("sk_none") is None

        async def timed() -> float:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.account_by_key("sk_none")
            return time.monotonic() - started

        with frozen(redis_server):
            took = await asyncio.gather(*(timed() for _ in range(100)))
        assert max(took) <= FIRST, sorted(took)[-5:]
    finally:
        await store.close()
        await client.aclose()


async def test_an_answer_that_is_an_error_is_no_outage():
    """Redis answering with an error (a script error, OOM, READONLY) answered: nothing to wait for."""

    async def ping() -> None:
        raise AssertionError("no probe expected")

    health = RedisHealth(ping, TIMEOUT)
    health.failed(ResponseError("OOM command not allowed when used memory > 'maxmemory'"))
    assert not health.down
    health.failed(ConnectionRefusedError())
    assert health.down
    await health.close()


async def test_a_slow_redis_costs_a_request_at_most_the_timeout_in_all(make_client, redis_server):
    """Each call answers within the timeout, but a send makes several: together they are bounded."""
    client = await make_client(**gateway(redis_server, "redis", "deny"))
    assert (await send(client, 1))[0] == 200
    stop = threading.Event()
    started = threading.Barrier(3)

    # Two connections take turns, so a busy script is always queued ahead of the gateway's next
    # command: each of its calls waits 0.2 to 0.4 s (within the timeout), and the three a send
    # makes before it answers (bucket, windows, reserve) already wait longer than that in all.
    def keep_redis_busy() -> None:
        with redis.Redis.from_url(redis_server.url) as other:
            other.ping()
            started.wait()
            while not stop.is_set():
                other.eval(BUSY_SCRIPT, 0, 200_000)

    busy = [threading.Thread(target=keep_redis_busy) for _ in range(2)]
    for thread in busy:
        thread.start()
    try:
        await asyncio.to_thread(started.wait)
        await asyncio.sleep(0.05)
        status, _, took = await send(client, 2)
    finally:
        stop.set()
        for thread in busy:
            thread.join()
    assert status == 503 and took <= FIRST, (status, took)
