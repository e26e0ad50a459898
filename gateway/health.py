"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.keys import CLOCK, LIMITER, STORE
from gateway.ratelimit import LimiterUnavailable
from gateway.responses import json_response
from gateway.store.base import Store, StoreUnavailable

__all__ = ["WRITE_PROBE_SECONDS", "WriteProbe", "healthz", "readiness"]

log = logging.getLogger("smsedge.health")
WRITE_PROBE_SECONDS = 5.0  # probes are asked for every second or so, by every load balancer


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


class WriteProbe:
    """A real write to the store at most every ``interval`` seconds; its outcome is kept between.

    Reads and the write lock still answer while the disk is full, so only a committed write tells
    whether a send can be recorded; rate-limited, so readiness checks cannot become a write load.
    """

    def __init__(
        self, interval: float = WRITE_PROBE_SECONDS, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval
        self._monotonic = monotonic
        self._next = float("-inf")
        self._failure: str | None = None
        self._lock = asyncio.Lock()

    async def failure(self, store: Store, now_ms: int) -> str | None:
        """Why the last write failed, or None when it succeeded."""
        async with self._lock:  # concurrent checks share one write
            if self._monotonic() >= self._next:
                try:
                    await store.probe_write(now_ms)
                    self._failure = None
                except StoreUnavailable as exc:
                    self._failure = str(exc)
                self._next = self._monotonic() + self._interval
        return self._failure


def readiness(probe: WriteProbe) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def readyz(request: web.Request) -> web.Response:
        """Ready when every dependency a send needs answers; a 503 names the ones that do not."""
        checks = {"store": "ok", "ratelimit": "ok"}
        store = request.app[STORE]
        try:
            await store.ping()
            failure = await probe.failure(store, int(request.app[CLOCK]() * 1000))
        except StoreUnavailable as exc:
            failure = str(exc)
        if failure:
            log.warning("readiness: store unavailable: %s", failure)
            checks["store"] = "unavailable"
        try:
            await request.app[LIMITER].backend.ping()
        except LimiterUnavailable as exc:
            log.warning("readiness: rate-limit backend unavailable: %s", exc)
            checks["ratelimit"] = "unavailable"
        failed = sorted(name for name, state in checks.items() if state != "ok")
        body = {"status": "unavailable" if failed else "ok", "checks": checks, "failed": failed}
        return json_response(body, status=503 if failed else 200)

    return readyz
