"""The token bucket and the per-number windows, on both backends, answering the same questions."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.config.loader import parse_section
from gateway.config.model import RedisConfig, WindowConfig
from gateway.ratelimit import LimiterUnavailable, phone_hash
from gateway.ratelimit.backends import LIMITERS
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.redis import RedisLimiter
from gateway.redis.client import redis_client
from tests.conftest import REDIS_MODES, FakeClock, redis_section

SLOW = 0.001  # tokens per second: no refill during a test


def new_id() -> str:
    return uuid.uuid4().hex


BACKENDS = ["memory", "redis"]


def test_every_limiter_backend_answers_the_same_questions():
    assert sorted(BACKENDS) == sorted(LIMITERS)


@pytest.fixture(params=["memory", *(f"redis-{mode}" for mode in REDIS_MODES)])
async def limiter(request):
    """Each backend (Redis in each mode), empty."""
    if request.param == "memory":
        yield MemoryLimiter()
        return
    section = redis_section(request, request.param.removeprefix("redis-"))
    client = redis_client(parse_section(section, RedisConfig, "redis"))
    yield RedisLimiter(client, section.get("key_prefix", "test:"))
    await client.aclose()


async def test_concurrent_requests_against_a_bucket_of_b_admit_exactly_b(limiter):
    decisions = await asyncio.gather(*(limiter.take(7, SLOW, 10, 1) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 10
    refused = [d for d in decisions if not d.allowed]
    assert all(d.retry_after >= 1 and d.remaining == 0 and d.limit == 10 for d in refused)


async def test_buckets_are_per_account(limiter):
    assert (await limiter.take(1, SLOW, 1, 1)).allowed
    assert not (await limiter.take(1, SLOW, 1, 1)).allowed
    assert (await limiter.take(2, SLOW, 1, 1)).allowed


async def test_a_request_costs_its_tokens_and_is_never_taken_in_part(limiter):
    first = await limiter.take(3, SLOW, 10, 6)
    assert first.allowed and first.remaining == 4
    second = await limiter.take(3, SLOW, 10, 6)
    assert not second.allowed and second.remaining == 4  # nothing was taken
    assert (await limiter.take(3, SLOW, 10, 4)).allowed


async def test_a_cost_above_the_burst_passes_on_a_full_bucket_and_leaves_debt(limiter):
    big = await limiter.take(4, 1.0, 40, 100)
    assert big.allowed and big.remaining == 0
    after = await limiter.take(4, 1.0, 40, 1)
    assert not after.allowed
    assert 55 <= after.retry_after <= 62  # 60 tokens of debt at 1/s, plus the one asked for


async def test_windows_count_per_number_and_refuse_when_full(limiter):
    windows = (WindowConfig(limit=2, seconds=60), WindowConfig(limit=3, seconds=3600))
    keys = [phone_hash(b"k", "+8613800138000"), phone_hash(b"k", "+8613900139000")]
    assert [d.allowed for d in await limiter.hit(keys, windows, new_id())] == [True, True]
    assert [d.allowed for d in await limiter.hit(keys[:1], windows, new_id())] == [True]
    third = await limiter.hit(keys, windows, new_id())
    assert [d.allowed for d in third] == [False, True]
    assert 1 <= third[0].retry_after <= 60


async def test_released_hits_no_longer_count(limiter):
    windows = (WindowConfig(limit=1, seconds=60),)
    kept, refused_later = new_id(), new_id()
    assert (await limiter.hit(["a", "b"], windows, refused_later))[0].allowed
    await limiter.release(["a", "b"], refused_later)
    assert [d.allowed for d in await limiter.hit(["a", "b"], windows, kept)] == [True, True]
    assert [d.allowed for d in await limiter.hit(["a", "b"], windows, new_id())] == [False, False]


async def test_memory_bucket_refills_at_its_rate():
    clock = FakeClock(1000.0)
    limiter = MemoryLimiter(clock=clock)
    for _ in range(4):
        assert (await limiter.take(1, 2.0, 4, 1)).allowed
    refused = await limiter.take(1, 2.0, 4, 1)
    assert not refused.allowed
    assert refused.retry_after == 1 and refused.reset == 2
    clock.advance(0.5)  # one token at 2/s
    allowed = await limiter.take(1, 2.0, 4, 1)
    assert allowed.allowed and allowed.remaining == 0
    assert not (await limiter.take(1, 2.0, 4, 1)).allowed
    clock.advance(10)  # never more than the burst
    assert (await limiter.take(1, 2.0, 4, 1)).remaining == 3


async def test_memory_windows_slide_with_time():
    clock = FakeClock(0.0)
    limiter = MemoryLimiter(clock=clock)
    windows = (WindowConfig(limit=1, seconds=60),)
    assert (await limiter.hit(["n"], windows, new_id()))[0].allowed
    clock.advance(45)
    refused = (await limiter.hit(["n"], windows, new_id()))[0]
    assert not refused.allowed and refused.retry_after == 15
    clock.advance(15.001)
    assert (await limiter.hit(["n"], windows, new_id()))[0].allowed


async def test_memory_state_of_idle_accounts_and_numbers_is_dropped():
    clock = FakeClock(0.0)
    limiter = MemoryLimiter(clock=clock)
    windows = (WindowConfig(limit=1, seconds=60),)
    for account in range(100):
        await limiter.take(account, 1.0, 5, 1)
        await limiter.hit([f"n{account}"], windows, new_id())
    clock.advance(3600)
    for account in range(100, 160):  # traffic from others sweeps the idle ones out
        await limiter.take(account, 1.0, 5, 1)
        await limiter.hit([f"n{account}"], windows, new_id())
    assert len(limiter._buckets) <= 60 + 4
    assert len(limiter._hits) <= 60 + 4


async def test_redis_keys_are_cluster_safe_expire_and_hold_no_number(redis_server):
    client = redis_client(RedisConfig(url=redis_server.url))
    limiter = RedisLimiter(client, "smsedge:")
    await limiter.take(42, 1.0, 10, 3)
    await limiter.hit([phone_hash(b"secret", "+8613812345678")], (WindowConfig(1, 60),), new_id())
    raw = Redis.from_url(redis_server.url)
    keys = sorted(key.decode() for key in await raw.keys("*"))
    assert len(keys) == 2
    for key in keys:
        assert key.startswith("smsedge:")
        assert key.count("{") == 1 and key.count("}") == 1  # one hash tag: one cluster slot
        assert 0 < await raw.pttl(key) <= 60_000  # expires once idle
        assert "13812345678" not in key
    assert "smsedge:{a:42}:bucket" in keys
    stored = [await raw.hgetall(keys[0]), await raw.zrange(keys[1], 0, -1)]
    assert "13812345678" not in str(stored)
    await raw.aclose()
    await client.aclose()


async def test_redis_outage_raises_and_service_resumes_after_a_restart(redis_server):
    client = redis_client(RedisConfig(url=redis_server.url, timeout=0.5))
    limiter = RedisLimiter(client, "t:")
    assert (await limiter.take(1, SLOW, 2, 1)).allowed
    redis_server.stop()
    with pytest.raises(LimiterUnavailable):
        await limiter.take(1, SLOW, 2, 1)
    with pytest.raises(LimiterUnavailable):
        await limiter.ping()
    redis_server.start()
    async with asyncio.timeout(5):  # calls fail fast until the client's probe gets an answer
        while client.health.down:
            await asyncio.sleep(0.05)
    # A restarted Redis forgot its scripts and buckets: both come back without a restart of ours.
    assert (await limiter.take(1, SLOW, 2, 1)).allowed
    assert (await limiter.take(1, SLOW, 2, 1)).allowed
    assert not (await limiter.take(1, SLOW, 2, 1)).allowed
    await client.aclose()


async def test_redis_windows_of_a_batch_come_back_after_redis_forgot_its_scripts(redis_server):
    """The windows of several numbers go out together by digest; a flushed script is loaded again
    and the calls Redis refused are run once (no number counted twice, none skipped)."""
    client = redis_client(RedisConfig(url=redis_server.url))
    limiter = RedisLimiter(client, "t:")
    windows = (WindowConfig(2, 60),)
    numbers = [f"n{i}" for i in range(5)]
    assert all(d.allowed for d in await limiter.hit(numbers, windows, new_id()))
    await client.script_flush()
    assert all(d.allowed for d in await limiter.hit(numbers, windows, new_id()))
    assert not any(d.allowed for d in await limiter.hit(numbers, windows, new_id()))
    await client.aclose()


async def test_redis_calls_made_at_once_share_one_pipeline_and_keep_their_own_answers(redis_server):
    client = redis_client(RedisConfig(url=redis_server.url))
    limiter = RedisLimiter(client, "t:")
    await limiter.take(9, SLOW, 1, 1)  # Redis has the script from here on
    sent: list[int] = []
    pipeline = client.pipeline

    def counting(*args, **kwargs):
        sent.append(1)
        return pipeline(*args, **kwargs)

    client.pipeline = counting  # type: ignore[method-assign]
    decisions = await asyncio.gather(*(limiter.take(account, SLOW, 1, 1) for account in (1, 1, 2, 3)))
    assert [d.allowed for d in decisions] == [True, False, True, True]
    assert len(sent) == 1
    await client.set("t:text", "x")
    results = await asyncio.gather(
        client.batch("INCR", "t:text"), client.batch("INCR", "t:count"), return_exceptions=True
    )
    assert isinstance(results[0], ResponseError) and results[1] == 1  # an error is its caller's
    await client.aclose()
