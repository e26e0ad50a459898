"""The callbacks' POSTs leave from a process of their own (gateway.callbacks.poster): what the
deliverer hands it reaches the receiver as it was, a slow receiver times out, and a process that
dies is replaced, its unanswered POSTs reported as not reached (to be tried again)."""

from __future__ import annotations

import asyncio
import os
import signal

from aiohttp import web

from gateway.callbacks.poster import Poster


async def receiver(aiohttp_server, delay: float = 0.0) -> tuple[str, list[tuple[dict[str, str], bytes]]]:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        await asyncio.sleep(delay)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    return str(server.make_url("/hook")), seen


async def test_a_post_reaches_the_receiver_as_handed_over(aiohttp_server):
    url, seen = await receiver(aiohttp_server)
    async with Poster(2.0) as poster:
        answers = await asyncio.gather(
            *(poster.post(url, f'{{"n": {n}}}'.encode(), {"X-N": str(n)}) for n in range(20))
        )
    assert answers == [(202, None)] * 20
    assert sorted((headers["X-N"], body) for headers, body in seen) == sorted(
        (str(n), f'{{"n": {n}}}'.encode()) for n in range(20)
    )
    assert {headers["User-Agent"] for headers, _ in seen} == {"SmsEdge-Callbacks/1"}


async def test_a_slow_receiver_times_out_and_a_refused_connection_is_not_reached(aiohttp_server):
    url, _ = await receiver(aiohttp_server, delay=3.0)
    async with Poster(0.5) as poster:
        assert await poster.post(url, b"{}", {}) == (None, "no answer within 0.5 s")
        assert await poster.post("http://127.0.0.1:9/hook", b"{}", {}) == (
            None,
            "not reached: ClientConnectorError",
        )


async def test_a_dead_process_is_replaced_and_its_posts_are_not_reached(aiohttp_server):
    url, seen = await receiver(aiohttp_server, delay=1.0)
    async with Poster(5.0) as poster:
        waiting = asyncio.create_task(poster.post(url, b"{}", {}))
        while not seen:
            await asyncio.sleep(0.01)
        process = poster._process
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)
        assert await waiting == (None, "not reached: the callbacks' process ended")
        assert await poster.post(url, b"{}", {}) == (202, None)  # a new process
        assert poster._process is not None and poster._process.pid != process.pid
