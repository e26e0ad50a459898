"""Count and time every request by method, route template and final status."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import ApiError
from gateway.keys import ROUTE
from gateway.metrics import Metrics

__all__ = ["request_metrics"]


def _status_of(exc: Exception) -> int:
    if isinstance(exc, ApiError | web.HTTPException):
        return exc.status
    return 500


def request_metrics(metrics: Metrics) -> web.middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except Exception as exc:
            metrics.observe_request(request.method, request[ROUTE], _status_of(exc),
                                    time.perf_counter() - started)
            raise
        metrics.observe_request(request.method, request[ROUTE], response.status,
                                time.perf_counter() - started)
        return response

    return middleware
