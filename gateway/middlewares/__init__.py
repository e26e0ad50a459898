"""The root app's request pipeline: one middleware that runs every concern as a plain call.

Each concern is a module of its own with its own tests; the pipeline composes them once, at start,
so a request pays for one coroutine, not one nested layer per concern. Order, outermost first:
request context (id, error envelope, access line), metrics, body limit, the route's handler (an API
route with the API's steps, ``gateway.api``), response headers.
Why that order: (docs/design.md, "The request path").
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.config.model import GatewayConfig
from gateway.keys import RATE_LIMIT_HEADERS, ROUTE_TEMPLATE
from gateway.metrics import Metrics
from gateway.middlewares.body_limit import body_limit
from gateway.middlewares.metrics import RequestObserver
from gateway.middlewares.request_context import answer_error, begin, sampled_access_line
from gateway.middlewares.security_headers import add_headers
from gateway.status.timeline import Timeline

__all__ = ["build_middlewares"]


def build_middlewares(config: GatewayConfig, metrics: Metrics, timeline: Timeline) -> list[Middleware]:
    return [request_pipeline(config, RequestObserver(metrics, timeline))]


def request_pipeline(config: GatewayConfig, observe: RequestObserver) -> Middleware:
    check_body = body_limit(max_bytes=config.server.max_body_bytes, read_timeout=config.server.body_timeout)
    tls = config.server.tls.scheme == "https"
    access_line = sampled_access_line(config.logging.access_sample)

    @web.middleware
    async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = begin(request)
        try:
            await check_body(request)
            response = await handler(request)
        except Exception as exc:
            try:
                response = answer_error(request, exc, request_id)
            except web.HTTPException as redirect:  # a redirect goes out as aiohttp makes it
                observe(
                    request.method, request[ROUTE_TEMPLATE], redirect.status, time.perf_counter() - started
                )
                raise
        limits = request.get(RATE_LIMIT_HEADERS)
        if limits is not None:
            response.headers.update(limits)
        add_headers(request, response, tls=tls)
        response.headers["X-Request-ID"] = request_id
        observe(request.method, request[ROUTE_TEMPLATE], response.status, time.perf_counter() - started)
        access_line(request, request_id, response.status, started)
        return response

    return pipeline
