"""The middleware chain, outermost first, fixed in one place.

Order and why:
1. ``request_context`` — request id, the JSON error envelope for every failure below it (404/405/413
   and bugs included) and the access-log line, so nothing escapes unlogged or un-enveloped.
2. (metrics — next: outside the body limit and auth, so refused requests are counted too)
3. ``body_limit`` — refuse oversized bodies by their declared length before anyone reads them.
4. ``authentication`` — who is calling; everything under /api/ needs a key and secret.
5. (rate limit — next: after auth, because buckets are per account)
6. (masking — next: innermost, the last look at what handlers return)
"""

from __future__ import annotations

from aiohttp import web

from gateway.config import GatewayConfig
from gateway.middlewares.auth import authentication
from gateway.middlewares.body_limit import body_limit
from gateway.middlewares.request_context import request_context

__all__ = ["build_middlewares"]


def build_middlewares(config: GatewayConfig) -> list[web.middleware]:
    return [
        request_context(),
        body_limit(max_bytes=config.server.max_body_bytes),
        authentication(),
    ]
