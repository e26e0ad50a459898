"""The root app's middleware chain, outermost first, fixed in one place.

Order and why:
1. ``request_context`` — request id, the JSON error envelope for every failure below it (404/405/413
   and bugs included), the response headers inner layers ask for, and the access-log line: nothing
   escapes unlogged or un-enveloped.
2. ``request_metrics`` — outside everything that can refuse a request, so refusals are counted too,
   with the status the caller will see.
3. ``body_limit`` — refuse oversized bodies by their declared length before anyone reads them.
4. ``security_headers`` — innermost: CSP, nosniff, no-referrer and no framing on what the root app
   serves itself (docs, console, status, their static files).

A request to the API then runs the /api sub-app's own chain (``gateway.api``): authentication,
rate limit, masking — after all of the above, so its refusals are enveloped, counted and logged.
"""

from __future__ import annotations

from aiohttp import web

from gateway.config.model import GatewayConfig
from gateway.metrics import Metrics
from gateway.middlewares.body_limit import body_limit
from gateway.middlewares.metrics import request_metrics
from gateway.middlewares.request_context import request_context
from gateway.middlewares.security_headers import security_headers
from gateway.timeline import Timeline

__all__ = ["build_middlewares"]


def build_middlewares(config: GatewayConfig, metrics: Metrics, timeline: Timeline) -> list[web.middleware]:
    return [
        request_context(),
        request_metrics(metrics, timeline),
        body_limit(max_bytes=config.server.max_body_bytes, read_timeout=config.server.body_timeout),
        security_headers(),
    ]
