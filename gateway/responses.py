"""JSON responses, encoded once, that keep what they were built from for the masking safety net."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import orjson
from aiohttp import web

from gateway.errors import ApiError, error_body
from gateway.phones import scrub

__all__ = ["JsonResponse", "error_response", "json_response"]

_encode_struct = msgspec.json.Encoder().encode


class JsonResponse(web.Response):
    """``data`` (an API model, a msgspec ``Struct``, or plain JSON values) encoded once.

    ``payload`` gives it as plain values, made only when asked (masking's closer look, idempotency).
    """

    def __init__(self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        encoded = _encode_struct(data) if isinstance(data, msgspec.Struct) else orjson.dumps(data)
        super().__init__(
            body=encoded, status=status, headers=headers, content_type="application/json", charset="utf-8"
        )
        self._data = data

    @property
    def payload(self) -> Any:
        if isinstance(self._data, msgspec.Struct):
            self._data = msgspec.to_builtins(self._data)
        return self._data

    def set_payload(self, payload: Any) -> None:
        if payload != self.payload:
            self._data = payload
            self.body = orjson.dumps(payload)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> JsonResponse:
    """``data`` as JSON: an API model (a msgspec ``Struct``) or plain values."""
    return JsonResponse(data, status=status, headers=headers)


def error_response(error: ApiError, request_id: str) -> JsonResponse:
    """The envelope every error is answered in; its message masked, since it may quote a carrier."""
    response = json_response(
        error_body(error.code, scrub(error.message), request_id), status=error.status, headers=error.headers
    )
    if error.close_connection:
        response.force_close()
    return response
