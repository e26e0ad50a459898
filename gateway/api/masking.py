"""The last line of defence: no phone-shaped value leaves an API response.

Handlers build their answers masked already (``Phone.masked``); this step, the last of every API
route, looks again at whatever a handler returns, so a future handler cannot leak a number. The
look is cheap where it can be: one compiled pattern over the encoded body (``may_hold_phone``), and
only a body it flags is walked and encoded again — the gateway's own JSON responses by their
payload (no re-parsing), aiohttp's ``json_response`` or plain text by their body. Error envelopes
are masked where they are made (``gateway.responses.error_response``).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from gateway.payload_masking import mask_payload
from gateway.phones import may_hold_phone, scrub
from gateway.responses import JsonResponse

__all__ = ["mask_response"]


def _text_of(body: bytes | bytearray, charset: str | None) -> str:
    return body.decode(charset or "utf-8", errors="replace")


def _mask_body(response: web.Response, body: bytes | bytearray) -> None:
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
        text = _text_of(body, response.charset)
        masked_text = scrub(text)
        if masked_text != text:
            response.body = masked_text.encode(response.charset or "utf-8")


def mask_response(response: web.StreamResponse) -> web.StreamResponse:
    """``response`` with every phone-shaped value in its body masked."""
    if not isinstance(response, web.Response):
        return response
    body = response.body
    if not isinstance(body, bytes | bytearray) or not may_hold_phone(_text_of(body, response.charset)):
        return response
    if isinstance(response, JsonResponse):
        response.set_payload(mask_payload(response.payload))
    else:
        _mask_body(response, body)
    return response
