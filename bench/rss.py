"""Memory: the gateway's resident set after 20,000 sends and after 200,000 (it should not grow).

A leak check, so the load cycles through a fixed pool of numbers (20,000 by default) and the
per-number window is {limit: 1, seconds: 1}: still checked on every send, never full under this
load, and holding one entry per number, so the limiter's state is full-size after the first pass
through the pool and any growth after that is the gateway holding on to something.

Why not a wider window: the in-process limiter keeps up to ``limit`` hits per number for as long
as the number is not quiet for the longest window, about 160 bytes each, so a pool sent to
again and again grows it until every number holds ``limit`` hits; and with a fresh number per send
the shipped windows keep about 1.1 KB per number for a day. Both are state by design, not leaks
(docs/benchmarks.md has the numbers).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from bench.servers import BENCH_KEY, BENCH_SECRET, Server, gateway_document, start_gateway
from bench.settings import Settings
from bench.wrk import Load, run_wrk

__all__ = ["FLAT", "run"]

FLAT = 1.10  # at most 10 % more after 10x the sends: allocator noise, not growth
ROUTE = "/api/sms/send"


def _send(gateway: Server, settings: Settings, count: int) -> int:
    """Send ``count`` more; return how many the gateway has answered in all."""
    target = gateway.served(ROUTE) + count
    per_thread = -(-count // settings.threads)
    load = Load(
        gateway.url,
        BENCH_KEY,
        BENCH_SECRET,
        settings.threads,
        settings.connections,
        pool=settings.rss_pool // settings.threads,
        limit=per_thread,
    )
    run_wrk(load, seconds=600, until=lambda: gateway.served(ROUTE) >= target)
    return gateway.served(ROUTE)


def _reading(gateway: Server) -> int:
    time.sleep(1.0)  # let in-flight work settle before reading
    return gateway.rss_kib()


def run(settings: Settings, tmp: Path) -> dict[str, Any]:
    document = gateway_document(tmp, "rss", ratelimit={"phone": [{"limit": 1, "seconds": 1}]})
    with contextlib.ExitStack() as stack:
        gateway = start_gateway(tmp, "rss", document)
        stack.callback(gateway.stop)
        started = gateway.rss_kib()
        first_sends = _send(gateway, settings, settings.rss_first)
        first = _reading(gateway)
        total_sends = _send(gateway, settings, settings.rss_total - first_sends)
        last = _reading(gateway)
    return {
        "rss_start_mib": round(started / 1024, 1),
        "sends_first": first_sends,
        "rss_first_mib": round(first / 1024, 1),
        "sends_total": total_sends,
        "rss_total_mib": round(last / 1024, 1),
        "growth": round(last / first, 3),
        "flat": last <= first * FLAT,
        "pool": settings.rss_pool,
    }
