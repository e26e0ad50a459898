"""The Tencent fake of tests/fakes, served with a fixed added latency: ``python -m bench.carrier PORT MS``.

Every call waits ``MS`` milliseconds before the fake answers, as a carrier across the internet would;
the fake's record of received requests is cleared after each call so a long run holds no memory.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web
from aiohttp.typedefs import Handler

from tests.fakes.tencent import SDK_APP_ID, SECRET_ID, SECRET_KEY, TencentUpstream, create_app

__all__ = ["SDK_APP_ID", "SECRET_ID", "SECRET_KEY", "delayed_app"]


def delayed_app(latency: float) -> web.Application:
    upstream = TencentUpstream()

    @web.middleware
    async def delay(request: web.Request, handler: Handler) -> web.StreamResponse:
        await asyncio.sleep(latency)
        try:
            return await handler(request)
        finally:
            upstream.requests.clear()

    app = create_app(upstream)
    app.middlewares.append(delay)
    app.router.add_get("/readyz", ready)
    return app


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="ok")


if __name__ == "__main__":
    port, latency_ms = int(sys.argv[1]), float(sys.argv[2])
    web.run_app(delayed_app(latency_ms / 1000), host="127.0.0.1", port=port, access_log=None, print=None)
