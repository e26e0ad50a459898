"""Refuse a body larger than ``server.max_body_bytes`` before anything reads it.

A declared length over the limit is refused at once; a chunked body is cut off by the app's
``client_max_size`` (the same limit) while it is read. Both answer 413 in the envelope.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import HTTP_ERRORS, ApiError

__all__ = ["body_limit"]


def body_limit(*, max_bytes: int) -> web.middleware:
    code, message = HTTP_ERRORS[413]
    # Thousands separators: a long bare number would be masked as if it were a phone.
    too_large = ApiError(413, code, f"{message}(上限 {max_bytes:,} 字节)")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.content_length or 0) > max_bytes:
            raise too_large
        return await handler(request)

    return middleware
