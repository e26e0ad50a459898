"""The last line of defence: no phone-shaped value leaves in a JSON response.

Handlers already mask what they return; this middleware walks every JSON payload on its way out and
masks any phone-shaped run of digits in strings (values and keys) a future handler might leak. Keys
that hold identifiers or times, never numbers, are left as they are.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.phones import scrub
from gateway.responses import JsonResponse

__all__ = ["SAFE_KEYS", "mask_payload", "masking"]

SAFE_KEYS = frozenset({
    "message_id", "request_id", "template_id", "created_at", "updated_at", "code", "provider",
    "status", "verification_status",
})


def mask_payload(value: Any, key: str | None = None) -> Any:
    if isinstance(value, str):
        return value if key in SAFE_KEYS else scrub(value)
    if isinstance(value, dict):
        return {scrub(k): mask_payload(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_payload(item, key) for item in value]
    return value


def masking() -> web.middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if isinstance(response, JsonResponse):
            response.set_payload(mask_payload(response.payload))
        return response

    return middleware
