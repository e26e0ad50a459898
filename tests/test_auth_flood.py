"""Failed logins under load, against a gateway process on loopback (bounded in count and time).

Before the hardening, every 401 re-raised one shared exception whose traceback kept each request
alive (RSS grew without bound), and every wrong secret cost ~70 ms of scrypt: a trickle of them
starved real callers. These are coarse guards, far from the figures they protect against.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import DEMO_HEADERS, DEMO_KEY, default_document, without_limits
from tests.gateway_process import GatewayProcess

MISSING = {"X-API-Key": "", "X-API-Secret": ""}
WRONG = {"X-API-Key": DEMO_KEY, "X-API-Secret": "wrong-secret-0123456789"}


@pytest.fixture
def gateway(tmp_path: Path):
    document = without_limits(default_document())
    document["store"]["path"] = str(tmp_path / "flood.db")
    document["logging"]["level"] = "WARNING"  # access lines would measure the log, not auth
    started = GatewayProcess(document, tmp_path, "flood")
    yield started
    started.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def hammer(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    until: float,
    expected: int,
    pause: float = 0.0,
) -> int:
    """Requests one after another until ``until``; returns how many got ``expected``."""
    done = 0
    while time.monotonic() < until:
        async with session.get(url, headers=headers) as response:
            await response.read()
            done += response.status == expected
        if pause:
            await asyncio.sleep(pause)
    return done


async def during(seconds: float, *loops: Callable[[float], Awaitable[int]]) -> list[int]:
    until = time.monotonic() + seconds
    return list(await asyncio.gather(*(loop(until) for loop in loops)))


async def test_memory_stays_flat_under_a_flood_of_401s(gateway):
    url = f"{gateway.url}/api/account/info"
    async with aiohttp.ClientSession() as session:

        def flood(headers: dict[str, str]) -> Callable[[float], Awaitable[int]]:
            return lambda until: hammer(session, url, headers, until, 401)

        loops = [flood(MISSING) for _ in range(6)] + [flood(WRONG) for _ in range(2)]
        warm = await during(5, *loops)
        at_5s = rss_kib(gateway.process.pid)
        rest = await during(20, *loops)
        at_25s = rss_kib(gateway.process.pid)
    assert sum(warm) > 1000 and sum(rest) > 4000  # it was really flooded, and answered 401
    assert at_25s <= at_5s * 1.10, f"RSS {at_5s} KiB at 5 s, {at_25s} KiB at 25 s"


async def test_a_real_caller_keeps_its_throughput_under_wrong_secrets(gateway):
    url = f"{gateway.url}/api/account/info"
    async with aiohttp.ClientSession() as session:

        def caller(until: float) -> Awaitable[int]:
            return hammer(session, url, DEMO_HEADERS, until, 200)

        def attacker(until: float) -> Awaitable[int]:  # ~50 wrong secrets a second
            return hammer(session, url, WRONG, until, 401, pause=0.02)

        [alone] = await during(4, caller)
        flooded, refused = await during(4, caller, attacker)
    assert refused > 100
    assert flooded >= 0.5 * alone, f"{alone} requests alone, {flooded} beside the flood"


async def test_a_wrong_secret_is_refused_quickly(gateway):
    url = f"{gateway.url}/api/account/info"
    timings = []
    async with aiohttp.ClientSession() as session:
        for headers in [WRONG] * 60:
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
            assert response.status == 401
            timings.append(time.perf_counter() - started)
    assert statistics.median(timings[10:]) < 0.005  # scrypt alone was ~70 ms
