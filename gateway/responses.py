"""JSON responses, serialised with orjson, that keep their payload for the masking middleware."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import orjson
from aiohttp import web

from gateway.errors import ApiError, error_body
from gateway.phones import scrub

__all__ = ["JsonResponse", "error_response", "json_response"]


class JsonResponse(web.Response):
    def __init__(self, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(
            body=orjson.dumps(payload), status=status, headers=headers,
            content_type="application/json", charset="utf-8",
        )
        self.payload = payload

    def set_payload(self, payload: Any) -> None:
        if payload != self.payload:
            self.payload = payload
            self.body = orjson.dumps(payload)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> JsonResponse:
    """``data`` as JSON; an API model (a msgspec ``Struct``) is kept as the plain values it holds."""
    if isinstance(data, msgspec.Struct):
        data = msgspec.to_builtins(data)
    return JsonResponse(data, status=status, headers=headers)


def error_response(error: ApiError, request_id: str) -> JsonResponse:
    """The envelope every error is answered in; its message masked, since it may quote a carrier."""
    response = json_response(
        error_body(error.code, scrub(error.message), request_id), status=error.status,
        headers=error.headers,
    )
    if error.close_connection:
        response.force_close()
    return response
