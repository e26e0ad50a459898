"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.keys import LIMITER, STORE
from gateway.ratelimit import LimiterUnavailable
from gateway.responses import json_response
from gateway.store import StoreUnavailable

__all__ = ["healthz", "readyz"]

log = logging.getLogger("smsedge.health")


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when every dependency a send needs answers; a 503 names the ones that do not."""
    checks = {"store": "ok", "ratelimit": "ok"}
    try:
        await request.app[STORE].ping()
    except StoreUnavailable as exc:
        log.warning("readiness: store unavailable: %s", exc)
        checks["store"] = "unavailable"
    try:
        await request.app[LIMITER].backend.ping()
    except LimiterUnavailable as exc:
        log.warning("readiness: rate-limit backend unavailable: %s", exc)
        checks["ratelimit"] = "unavailable"
    failed = sorted(name for name, state in checks.items() if state != "ok")
    body = {"status": "unavailable" if failed else "ok", "checks": checks, "failed": failed}
    return json_response(body, status=503 if failed else 200)
