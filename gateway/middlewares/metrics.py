"""Count and time every request by method, route template and final status (and, for the status
page's charts, count it in this minute of the timeline)."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import ApiError
from gateway.keys import ROUTE
from gateway.metrics import Metrics
from gateway.timeline import Timeline

__all__ = ["request_metrics"]


def _status_of(exc: Exception) -> int:
    if isinstance(exc, ApiError | web.HTTPException):
        return exc.status
    return 500


def request_metrics(metrics: Metrics, timeline: Timeline) -> web.middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except Exception as exc:
            status = _status_of(exc)
            metrics.observe_request(request.method, request[ROUTE], status, time.perf_counter() - started)
            timeline.request(status)
            raise
        metrics.observe_request(request.method, request[ROUTE], response.status,
                                time.perf_counter() - started)
        timeline.request(response.status)
        return response

    return middleware
