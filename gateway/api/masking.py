"""The last line of defence: no phone-shaped value leaves an API response.

Handlers already mask what they return; this middleware of the /api sub-app looks again at every
response of its routes, however it was built — the gateway's own JSON responses (their payload is
kept, no re-parsing), aiohttp's ``json_response`` or plain text — and masks any phone-shaped value a
future handler might leak. Error envelopes are masked where they are made
(``gateway.responses.error_response``). What the root app serves outside /api/ are the gateway's own
documents and aggregates (OpenAPI examples, metrics), left as they are.
"""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.phones import mask_payload, scrub
from gateway.responses import JsonResponse

__all__ = ["masking"]


def _mask_body(response: web.Response) -> None:
    body = response.body
    if not isinstance(body, bytes | bytearray):
        return
    if response.content_type == "application/json":
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if payload is not None:
            masked = mask_payload(payload)
            if masked != payload:
                response.body = orjson.dumps(masked)
            return
    if response.content_type.startswith(("text/", "application/json")):
        text = body.decode(response.charset or "utf-8", errors="replace")
        masked_text = scrub(text)
        if masked_text != text:
            response.body = masked_text.encode(response.charset or "utf-8")


def masking() -> web.middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if isinstance(response, JsonResponse):
            response.set_payload(mask_payload(response.payload))
        elif isinstance(response, web.Response):
            _mask_body(response)
        return response

    return middleware
