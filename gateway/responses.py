"""JSON responses, serialised with orjson, that keep their payload for the masking middleware."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

__all__ = ["JsonResponse", "json_response"]


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
    return JsonResponse(data, status=status, headers=headers)
