"""A callback receiver for the bench: ``python -m bench.receiver PORT SECONDS``.

Answers every POST with 204 after ``SECONDS`` (0: at once) without checking the signature (the
tests do that); ``GET /count`` says how many POSTs it has answered, so the case can show the
deliverer kept up.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

__all__ = ["create_app"]


def create_app(delay: float) -> web.Application:
    answered = [0]

    async def event(request: web.Request) -> web.Response:
        await request.read()
        if delay:
            await asyncio.sleep(delay)
        answered[0] += 1
        return web.Response(status=204)

    async def count(request: web.Request) -> web.Response:
        return web.Response(text=str(answered[0]))

    app = web.Application()
    app.router.add_post("/{path:.*}", event)
    app.router.add_get("/count", count)
    app.router.add_get("/readyz", count)
    return app


if __name__ == "__main__":
    port, delay = int(sys.argv[1]), float(sys.argv[2])
    web.run_app(create_app(delay), host="127.0.0.1", port=port, access_log=None, print=None)
