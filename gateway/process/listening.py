"""Serving the app on the configured port, with one limit for a request header over HTTP and TLS alike.

Over TLS ``web.run_app`` leaves asyncio's limits in place (a 60 s handshake before the header timer
starts, 30 s waiting for close_notify), so a silent socket held a descriptor for 60 s. Here the
header's time runs from the accept, and a closed TLS connection waits only ``TLS_CLOSE_TIMEOUT``;
``web.run_app`` has no parameters for either, so ``serve_until_stopped`` does its job with them.
Why: (docs/deploy-service-tls.md, "Clients that send nothing").
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.config.model import ServerConfig

__all__ = ["TLS_CLOSE_TIMEOUT", "HeaderDeadlineHandler", "serve_until_stopped"]

TLS_CLOSE_TIMEOUT = 1.0  # seconds a closing TLS connection waits for the client's close_notify
BACKLOG = 128  # web.run_app's


class HeaderDeadlineHandler(RequestHandler):
    """aiohttp's connection handler, with its first header deadline counted from the accept.

    The server makes a handler when it accepts a connection; over TLS the handler hears of the
    connection (``connection_made``) only after the handshake, and aiohttp starts its timer then.
    aiohttp has no public hook for the deadline, so this moves its timer back to the accept
    (tests/test_tls_timeouts.py fails if an aiohttp upgrade breaks this).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._accepted_at = self._loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._keepalive_handle is not None:  # the timer aiohttp has just started
            self._keepalive_handle.cancel()
            self._next_keepalive_close_time = self._accepted_at + self.keepalive_timeout
            self._keepalive_handle = self._loop.call_at(
                self._next_keepalive_close_time, self._process_keepalive
            )


def serve_until_stopped(
    app: web.Application,
    server: ServerConfig,
    ssl_context: ssl.SSLContext | None,
    *,
    reuse_port: bool,
    shutdown_timeout: float,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then drain for up to ``shutdown_timeout`` seconds and
    close ``loop``: what ``web.run_app`` does, with the TLS limits above."""
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, server, ssl_context, reuse_port, shutdown_timeout))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):  # the runner's signal handlers raise GracefulExit
        pass
    finally:
        if not main.done():
            main.cancel()  # its own ``finally`` drains the requests in flight and cleans the app up
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        _cancel_leftover_tasks(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _serve(
    app: web.Application,
    server: ServerConfig,
    ssl_context: ssl.SSLContext | None,
    reuse_port: bool,
    shutdown_timeout: float,
) -> None:
    # aiohttp's keep-alive timer runs from a connection's start and from each response until a
    # complete request header arrives: one bound for idle connections and slow headers alike.
    runner = web.AppRunner(
        app,
        handle_signals=True,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=server.header_timeout,
    )
    await runner.setup()
    assert runner.server is not None  # made by setup()
    try:
        tls: dict[str, Any] = (
            {}
            if ssl_context is None
            else {
                "ssl": ssl_context,
                "ssl_handshake_timeout": server.header_timeout,
                "ssl_shutdown_timeout": TLS_CLOSE_TIMEOUT,
            }
        )
        listener = await asyncio.get_running_loop().create_server(
            runner.server, server.host, server.port, backlog=BACKLOG, reuse_port=reuse_port, **tls
        )
        try:
            await asyncio.Future()  # until cancelled
        finally:
            listener.close()
    finally:
        await runner.cleanup()


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Tasks still running once the app is cleaned up are cancelled and awaited, as ``web.run_app``
    does, so the loop closes without "Task was destroyed but it is pending" on stderr."""
    leftovers = list(asyncio.all_tasks(loop))
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    outcomes = loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
    for task, outcome in zip(leftovers, outcomes, strict=True):
        if isinstance(outcome, Exception):
            loop.call_exception_handler(
                {"message": "a task failed while the gateway stopped", "exception": outcome, "task": task}
            )
