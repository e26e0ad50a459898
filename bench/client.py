"""A small aiohttp load client: ``count`` requests at fixed concurrency, each one timed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp

__all__ = ["timed_requests"]

Call = Callable[[aiohttp.ClientSession, int], Awaitable[int]]  # request number -> HTTP status


async def timed_requests(call: Call, count: int, concurrency: int) -> tuple[list[float], dict[int, int]]:
    """Durations in seconds of ``count`` calls, and how many ended with each status."""
    numbers = iter(range(count))
    durations: list[float] = []
    statuses: dict[int, int] = {}

    async def worker(session: aiohttp.ClientSession) -> None:
        for number in numbers:
            started = time.perf_counter()
            status = await call(session, number)
            durations.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return durations, statuses
