"""POST /api/sms/batch-send of 100 numbers: numbers/s through the mock carrier, and latency through
the Tencent plugin to a fake with 50 ms latency.

The gateway runs on the embedded default (SQLite, in-process limits) with Tencent as its only
backend, pointed at the fake of tests/fakes/tencent.py (which checks every signature). Each batch
has 100 numbers never used before, so the shipped per-number windows stay on and refuse nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.carrier import SDK_APP_ID, SECRET_ID, SECRET_KEY
from bench.client import timed_requests
from bench.servers import BENCH_KEY, BENCH_SECRET, gateway_document, start_carrier, start_gateway
from bench.settings import Settings
from bench.stats import latency_summary

__all__ = ["run"]

HEADERS = {"X-API-Key": BENCH_KEY, "X-API-Secret": BENCH_SECRET}
FIRST = 15_000_000_000  # 150…: a block the wrk cases never use
WARMUP = 10


def _document(tmp: Path, carrier_url: str) -> dict[str, Any]:
    backend = {
        "plugin": "tencent",
        "endpoint": carrier_url + "/",
        "region": "ap-guangzhou",
        "secret_id": SECRET_ID,
        "secret_key": SECRET_KEY,
        "sdk_app_id": SDK_APP_ID,
        "sign_name": "SMS Edge",
        "price": 0.045,
        "timeout": 5,
        "retries": 0,
    }
    return gateway_document(
        tmp, "batch", providers={"default": "tencent", "failover": [], "backends": {"tencent": backend}}
    )


def _batch(url: str, first: int):
    """A call sending batch ``number`` to 100 numbers from ``first + number * 100`` on."""

    async def call(session: aiohttp.ClientSession, number: int) -> int:
        start = first + number * 100
        body = {
            "phones": [str(start + i) for i in range(100)],
            "template_id": "123456",
            "params": {"code": "1234"},
        }
        async with session.post(url + "/api/sms/batch-send", json=body, headers=HEADERS) as answer:
            data = await answer.json()
            ok = answer.status == 200 and data["data"]["success_count"] == 100
            return answer.status if ok else -answer.status  # negative: some numbers failed

    return call


async def _drive(url: str, settings: Settings) -> tuple[list[float], dict[int, int]]:
    await timed_requests(_batch(url, FIRST), WARMUP, settings.batch_concurrency)
    measured = _batch(url, FIRST + WARMUP * 100)
    return await timed_requests(measured, settings.batch_requests, settings.batch_concurrency)


async def _numbers_per_s(url: str, settings: Settings) -> float:
    """Numbers a second through the measured batches (the warm-up ones not counted)."""
    await timed_requests(_batch(url, FIRST), WARMUP, settings.batch_concurrency)
    started = time.perf_counter()
    durations, _ = await timed_requests(
        _batch(url, FIRST + WARMUP * 100), settings.batch_requests, settings.batch_concurrency
    )
    return round(100 * len(durations) / (time.perf_counter() - started), 1)


def _mock_numbers_per_s(tmp: Path, settings: Settings) -> float:
    """Numbers a second through batch-sends of 100 on the embedded default (mock carrier)."""
    gateway = start_gateway(tmp, "batch-mock", gateway_document(tmp, "batch-mock"))
    try:
        return asyncio.run(_numbers_per_s(gateway.url, settings))
    finally:
        gateway.stop()


def run(settings: Settings, tmp: Path) -> dict[str, Any]:
    mock_numbers = _mock_numbers_per_s(tmp, settings)
    with contextlib.ExitStack() as stack:
        carrier = start_carrier(tmp, settings.carrier_latency_ms)
        stack.callback(carrier.stop)
        gateway = start_gateway(tmp, "batch", _document(tmp, carrier.url))
        stack.callback(gateway.stop)
        durations, statuses = asyncio.run(_drive(gateway.url, settings))
    return {
        "mock_numbers_per_s": mock_numbers,
        **latency_summary(durations),
        "concurrency": settings.batch_concurrency,
        "carrier_latency_ms": settings.carrier_latency_ms,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }
