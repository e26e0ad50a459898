"""The OpenAPI 3 document of every /api/ route, built from the same constants the checks use."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway import __version__
from gateway.api import idempotency
from gateway.api.validation import (
    MAX_BATCH,
    MAX_PAGE,
    MAX_PARAM_LENGTH,
    MAX_PARAM_NAME_LENGTH,
    MAX_PARAMS,
    MAX_PER_PAGE,
    PROVIDER_PATTERN,
    TEMPLATE_ID_PATTERN,
)
from gateway.keys import CONFIG
from gateway.phones import PHONE_PATTERN
from gateway.store.base import STATUSES

__all__ = ["openapi_document", "serve_openapi"]

_PHONE = {"type": "string", "pattern": PHONE_PATTERN, "example": "13800138000"}
_TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"}
_ERROR_CODES = {
    "400": "INVALID_PARAMS", "401": "UNAUTHORIZED",
    "403": "UNVERIFIED, INSUFFICIENT_BALANCE, ACCOUNT_DISABLED, PROVIDER_FORBIDDEN",
    "408": "REQUEST_TIMEOUT",
    "409": "IDEMPOTENCY_CONFLICT", "413": "PAYLOAD_TOO_LARGE", "429": "PHONE_RATE_LIMITED",
    "500": "INTERNAL_ERROR",
    "502": "PROVIDER_ERROR", "503": "UNAVAILABLE", "504": "PROVIDER_TIMEOUT",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {status: _json(_ref("Error"), _ERROR_CODES[status]) for status in statuses}


def _send_body(phones: dict[str, Any], providers: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [*phones, "template_id"],
        "properties": {
            **phones,
            "template_id": {"type": "string", "pattern": TEMPLATE_ID_PATTERN},
            "params": {
                "type": "object",
                "maxProperties": MAX_PARAMS,
                "propertyNames": {"minLength": 1, "maxLength": MAX_PARAM_NAME_LENGTH},
                "additionalProperties": {
                    "oneOf": [{"type": "string", "maxLength": MAX_PARAM_LENGTH}, {"type": "number"}]
                },
            },
            "provider": {"type": "string", "pattern": PROVIDER_PATTERN, "enum": providers},
        },
    }


def _schemas(providers: list[str]) -> dict[str, Any]:
    masked = {"type": "string", "example": "138****8000"}
    return {
        "Error": {
            "type": "object",
            "required": ["success", "message", "code", "request_id"],
            "properties": {
                "success": {"type": "boolean", "enum": [False]},
                "message": {"type": "string"},
                "code": {"type": "string"},
                "request_id": {"type": "string"},
            },
        },
        "SendRequest": _send_body({"phone": _PHONE}, providers),
        "BatchRequest": _send_body(
            {"phones": {"type": "array", "items": _PHONE, "minItems": 1, "maxItems": MAX_BATCH}},
            providers,
        ),
        "SendResponse": {
            "type": "object",
            "required": ["success", "message", "data"],
            "properties": {
                "success": {"type": "boolean"},
                "message": {"type": "string"},
                "data": {
                    "type": "object",
                    "required": ["message_id", "phone"],
                    "properties": {"message_id": {"type": "string"}, "phone": masked,
                                   "provider": {"type": "string"}, "status": {"type": "string"}},
                },
            },
        },
        "BatchResponse": {
            "type": "object",
            "required": ["success", "message", "data"],
            "properties": {
                "success": {"type": "boolean"},
                "message": {"type": "string"},
                "data": {
                    "type": "object",
                    "required": ["total", "success_count", "failed_count", "results"],
                    "properties": {
                        "total": {"type": "integer"},
                        "success_count": {"type": "integer"},
                        "failed_count": {"type": "integer"},
                        "results": {"type": "array", "items": {
                            "type": "object",
                            "required": ["phone", "success"],
                            "properties": {"phone": masked, "success": {"type": "boolean"},
                                           "message_id": {"type": "string"},
                                           "message": {"type": "string"}},
                        }},
                    },
                },
            },
        },
        "Record": {
            "type": "object",
            "required": ["id", "message_id", "phone", "template_id", "provider", "status",
                         "created_at", "updated_at", "price"],
            "properties": {
                "id": {"type": "integer", "minimum": 1,
                       "description": "numbered per account: 1, 2, 3 … for each account"},
                "message_id": {"type": "string"}, "phone": masked,
                "template_id": {"type": "string"}, "provider": {"type": "string"},
                "status": {"type": "string", "enum": list(STATUSES)},
                "created_at": _TIME, "updated_at": _TIME, "error": {"type": ["string", "null"]},
                "price": {"type": "number", "minimum": 0,
                          "description": "yuan charged for it (at most 3 decimals); 0 once refunded"},
            },
        },
        "RecordsResponse": {
            "type": "object",
            "required": ["success", "data"],
            "properties": {
                "success": {"type": "boolean"},
                "data": {
                    "type": "object",
                    "required": ["records", "total", "page", "per_page"],
                    "properties": {
                        "records": {"type": "array", "items": _ref("Record")},
                        "total": {"type": "integer"},
                        "page": {"type": "integer"},
                        "per_page": {"type": "integer"},
                    },
                },
            },
        },
        "AccountResponse": {
            "type": "object",
            "required": ["success", "data"],
            "properties": {
                "success": {"type": "boolean"},
                "data": {
                    "type": "object",
                    "required": ["balance", "total_sent", "today_sent", "verification_status"],
                    "properties": {
                        "balance": {"type": "number"},
                        "total_sent": {"type": "integer"},
                        "today_sent": {"type": "integer"},
                        "verification_status": {
                            "type": "string", "enum": ["approved", "pending", "rejected"]
                        },
                    },
                },
            },
        },
    }


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_IDEMPOTENCY_KEY = {
    "name": idempotency.HEADER, "in": "header", "required": False,
    "description": "同一账户 24 小时内重复使用:返回首次响应且不再发送;请求体不同则 409",
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH,
               "pattern": idempotency.KEY_PATTERN},
}


def _post(summary: str, request: str, response: str) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "parameters": [_IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
        "responses": {
            "200": _json(_ref(response), "handled"),
            **_errors("400", "401", "403", "408", "409", "413", "429", "500", "502", "503", "504"),
        },
    }}


def openapi_document(providers: list[str]) -> dict[str, Any]:
    records_parameters = [
        _query("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}),
        _query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": 10}),
        _query("status", {"type": "string", "enum": list(STATUSES)}),
        _query("start_time", _TIME),
        _query("end_time", _TIME),
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": "SMS Edge", "version": __version__},
        "security": [{"ApiKey": [], "ApiSecret": []}],
        "paths": {
            "/api/sms/send": _post("发送短信", "SendRequest", "SendResponse"),
            "/api/sms/batch-send": _post("批量发送短信", "BatchRequest", "BatchResponse"),
            "/api/sms/records": {"get": {
                "summary": "查询发送记录",
                "parameters": records_parameters,
                "responses": {"200": _json(_ref("RecordsResponse"), "a page of records"),
                              **_errors("400", "401", "403", "500", "503")},
            }},
            "/api/account/info": {"get": {
                "summary": "查询账户信息",
                "responses": {"200": _json(_ref("AccountResponse"), "the account"),
                              **_errors("401", "403", "500", "503")},
            }},
        },
        "components": {
            "schemas": _schemas(providers),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "ApiSecret": {"type": "apiKey", "in": "header", "name": "X-API-Secret"},
            },
        },
    }


async def serve_openapi(request: web.Request) -> web.Response:
    # A plain response on purpose: the document's example numbers are meant to be seen whole,
    # so it bypasses the masking middleware (which only rewrites JsonResponse payloads).
    document = openapi_document(sorted(request.app[CONFIG].providers.backends))
    return web.Response(body=orjson.dumps(document), content_type="application/json", charset="utf-8")
