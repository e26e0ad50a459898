"""Refuse a body larger than ``server.max_body_bytes``, or slower than ``server.body_timeout``.

A declared length over the limit is refused at once; a chunked body is cut off by the app's
``client_max_size`` (the same limit) while it is read. Both answer 413 in the envelope. A body still
arriving after ``body_timeout`` seconds is answered 408 and its connection closed, so a client that
trickles a body cannot hold a connection (and a handler) open. The body is read here, once; the
handler's later ``request.read()`` / ``json()`` gets it from aiohttp's cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.errors import HTTP_ERRORS, REQUEST_TIMEOUT, ApiError

__all__ = ["body_limit"]

BodyCheck = Callable[[web.Request], Awaitable[None]]


def body_limit(*, max_bytes: int, read_timeout: float) -> BodyCheck:
    """The pipeline's body step: returns once the body is in, else raises 413 or 408."""
    code, message = HTTP_ERRORS[413]
    # Thousands separators: a long bare number would be masked as if it were a phone.
    too_large = f"{message}(上限 {max_bytes:,} 字节)"
    too_slow = f"请求超时:请求体未在 {read_timeout:g} 秒内传完"

    async def check(request: web.Request) -> None:
        if (request.content_length or 0) > max_bytes:
            raise ApiError(413, code, too_large)
        if request.body_exists and not request.content.is_eof():  # a body already in full needs no timer
            try:
                async with asyncio.timeout(read_timeout):
                    await request.read()
            except TimeoutError:
                request.content.feed_eof()  # the rest is never read: no lingering for it either
                raise ApiError(408, REQUEST_TIMEOUT, too_slow, close_connection=True) from None

    return check
