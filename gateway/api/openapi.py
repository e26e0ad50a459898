"""The OpenAPI 3 document of every /api/ route, its schemas generated from the API's models.

``models.py`` declares each body, query and answer once; msgspec turns them into JSON Schema here,
so what the document promises is what the server decodes and answers. Only what the models cannot
know is added: the providers this gateway is configured with.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
import orjson
from aiohttp import web

from gateway import __version__
from gateway.api.idempotency import HEADER, KEY_PATTERN, MAX_KEY_LENGTH
from gateway.api.models import (
    AccountResponse,
    BatchRequest,
    BatchResponse,
    Error,
    RecordsQuery,
    RecordsResponse,
    SendRequest,
    SendResponse,
)
from gateway.keys import RUNTIME

__all__ = ["openapi_document", "serve_openapi"]

_REF = "#/components/schemas/{name}"
_MODELS = (SendRequest, BatchRequest, SendResponse, BatchResponse, RecordsResponse, AccountResponse, Error)
_ERROR_CODES = {
    "400": "INVALID_PARAMS", "401": "UNAUTHORIZED",
    "403": "UNVERIFIED, INSUFFICIENT_BALANCE, ACCOUNT_DISABLED, PROVIDER_FORBIDDEN",
    "408": "REQUEST_TIMEOUT",
    "409": "IDEMPOTENCY_CONFLICT", "413": "PAYLOAD_TOO_LARGE", "429": "PHONE_RATE_LIMITED",
    "500": "INTERNAL_ERROR",
    "502": "PROVIDER_ERROR", "503": "UNAVAILABLE", "504": "PROVIDER_TIMEOUT",
}
_IDEMPOTENCY_KEY = {
    "name": HEADER, "in": "header", "required": False,
    "description": "同一账户 24 小时内重复使用:返回首次响应且不再发送;请求体不同则 409",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_PATTERN},
}


def _ref(model: type[msgspec.Struct]) -> dict[str, str]:
    return {"$ref": _REF.format(name=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {status: _json(_ref(Error), _ERROR_CODES[status]) for status in statuses}


def _post(summary: str, request: type[msgspec.Struct], response: type[msgspec.Struct]) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "parameters": [_IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
        "responses": {
            "200": _json(_ref(response), "handled"),
            **_errors("400", "401", "403", "408", "409", "413", "429", "500", "502", "503", "504"),
        },
    }}


def _query_parameters(model: type[msgspec.Struct]) -> list[dict[str, Any]]:
    """Each field of a query model as an optional query parameter."""
    _, components = msgspec.json.schema_components([model], ref_template=_REF)
    fields = components[model.__name__]["properties"]
    return [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in fields.items()
    ]


@functools.cache
def _schemas(providers: tuple[str, ...]) -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(_MODELS, ref_template=_REF)
    for request in (SendRequest, BatchRequest):
        schemas[request.__name__]["properties"]["provider"]["enum"] = list(providers)
    return schemas


def openapi_document(providers: list[str]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "SMS Edge", "version": __version__},
        "security": [{"ApiKey": [], "ApiSecret": []}],
        "paths": {
            "/api/sms/send": _post("发送短信", SendRequest, SendResponse),
            "/api/sms/batch-send": _post("批量发送短信", BatchRequest, BatchResponse),
            "/api/sms/records": {"get": {
                "summary": "查询发送记录",
                "parameters": _query_parameters(RecordsQuery),
                "responses": {"200": _json(_ref(RecordsResponse), "a page of records"),
                              **_errors("400", "401", "403", "500", "503")},
            }},
            "/api/account/info": {"get": {
                "summary": "查询账户信息",
                "responses": {"200": _json(_ref(AccountResponse), "the account"),
                              **_errors("401", "403", "500", "503")},
            }},
        },
        "components": {
            "schemas": _schemas(tuple(providers)),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "ApiSecret": {"type": "apiKey", "in": "header", "name": "X-API-Secret"},
            },
        },
    }


async def serve_openapi(request: web.Request) -> web.Response:
    # A plain response of the root app on purpose: the document's example numbers are meant to be
    # seen whole, and the API's masking middleware never sees it.
    document = openapi_document(sorted(request.app[RUNTIME].current.config.providers.backends))
    return web.Response(body=orjson.dumps(document), content_type="application/json", charset="utf-8")
