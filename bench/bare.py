"""The ceiling for this stack: a bare aiohttp handler that parses the send body and answers JSON.

No middlewares, no store, no access log: ``python -m bench.bare PORT``.
"""

from __future__ import annotations

import sys

import orjson
from aiohttp import web

__all__ = ["create_app"]


async def send(request: web.Request) -> web.Response:
    data = orjson.loads(await request.read())
    body = {
        "success": True,
        "message": "短信发送成功",
        "data": {"phone": data["phone"], "template_id": data["template_id"], "status": "success"},
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def ready(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/api/sms/send", send)
    app.router.add_get("/readyz", ready)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
