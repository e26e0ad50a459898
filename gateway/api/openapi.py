"""The OpenAPI 3 document of every /api/ route, its schemas generated from the API's models.

``models.py`` declares each body, query and answer once; msgspec turns them into JSON Schema here,
so what the document promises is what the server decodes and answers. Only what the models cannot
know is added: the providers this gateway is configured with.

While ``admin.tokens`` are configured the admin API (``gateway.admin``) is in it too, tagged
``admin``, each operation under the ``AdminBearer`` scheme instead of the tenant's two headers.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
import orjson
from aiohttp import web

from gateway import __version__
from gateway.admin.models import (
    AdminAccountResponse,
    AdminAccountsResponse,
    AdminAuditResponse,
    AdminCallbackSecretResponse,
    AdminCallbacksResponse,
    AdminCreatedResponse,
    AdminMessageResponse,
    AdminReplayedResponse,
    AdminRotatedResponse,
    AdminUsageResponse,
    AuditQuery,
    CallbacksQuery,
    CreateAccountRequest,
    PatchAccountRequest,
    TopUpRequest,
    UsageQuery,
)
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
from gateway.api.openapi_parts import (
    IDEMPOTENCY_KEY,
    SCHEMA_REF,
    admin_operation,
    error_responses,
    json_content,
    query_parameters,
    schema_ref,
)
from gateway.keys import RUNTIME

__all__ = ["openapi_document", "serve_openapi"]

_MODELS = (SendRequest, BatchRequest, SendResponse, BatchResponse, RecordsResponse, AccountResponse, Error)


def _post(summary: str, request: type[msgspec.Struct], response: type[msgspec.Struct]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": [IDEMPOTENCY_KEY],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema_ref(request)}},
            },
            "responses": {
                "200": json_content(schema_ref(response), "handled"),
                **error_responses(
                    "400", "401", "403", "408", "409", "413", "429", "500", "502", "503", "504"
                ),
            },
        }
    }


@functools.cache
def _schemas(providers: tuple[str, ...]) -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(_MODELS, ref_template=SCHEMA_REF)
    for request in (SendRequest, BatchRequest):
        schemas[request.__name__]["properties"]["provider"]["enum"] = list(providers)
    return schemas


_ADMIN_MODELS = (
    CreateAccountRequest,
    PatchAccountRequest,
    TopUpRequest,
    AdminAccountsResponse,
    AdminAccountResponse,
    AdminCreatedResponse,
    AdminRotatedResponse,
    AdminCallbackSecretResponse,
    AdminCallbacksResponse,
    AdminReplayedResponse,
    AdminMessageResponse,
    AdminAuditResponse,
    AdminUsageResponse,
    Error,
)
_CHANGE = ("400", "401", "404", "405", "408", "413", "500", "503")
_NAMED = ("401", "404", "405", "500", "503")  # of a named account or message, without a body
_READS = ("401", "500", "503")  # what a read of the admin API may answer besides 200


def _admin_account_paths() -> dict[str, Any]:
    key = ("api_key",)
    return {
        "/admin/api/accounts": {
            "get": admin_operation("every account", "200", AdminAccountsResponse, _READS),
            "post": admin_operation(
                "create an account; its api_secret is shown this once",
                "201",
                AdminCreatedResponse,
                ("400", "401", "408", "409", "413", "500", "503"),
                body=CreateAccountRequest,
            ),
        },
        "/admin/api/accounts/{api_key}": {
            "patch": admin_operation(
                "change disabled, verification_status, ratelimit (null: the default) or providers",
                "200",
                AdminAccountResponse,
                _CHANGE,
                body=PatchAccountRequest,
                parameters=key,
            )
        },
        "/admin/api/accounts/{api_key}/topup": {
            "post": admin_operation(
                "add to the balance, with a reason; an Idempotency-Key is applied once",
                "200",
                AdminAccountResponse,
                (*_CHANGE, "409"),
                body=TopUpRequest,
                parameters=key,
                extra=(IDEMPOTENCY_KEY,),
            )
        },
        **{
            f"/admin/api/accounts/{{api_key}}/{action}": {
                "post": admin_operation(summary, "200", answer, _NAMED, parameters=key)
            }
            for action, summary, answer in (
                (
                    "rotate-secret",
                    "a new api_secret, shown this once; the old one stops working at once",
                    AdminRotatedResponse,
                ),
                (
                    "callback-secret",
                    "a new callback signing secret, shown this once; events are signed with it from now on",
                    AdminCallbackSecretResponse,
                ),
            )
        },
    }


def _admin_paths() -> dict[str, Any]:
    return {
        **_admin_account_paths(),
        "/admin/api/messages/{message_id}": {
            "get": admin_operation(
                "a record (masked) by its message id, with its account",
                "200",
                AdminMessageResponse,
                _NAMED,
                parameters=("message_id",),
            )
        },
        "/admin/api/accounts/{api_key}/callbacks": {
            "get": admin_operation(
                "the account's undelivered callback events (state=dead), newest first",
                "200",
                AdminCallbacksResponse,
                ("400", "404", *_READS),
                parameters=("api_key",),
                extra=tuple(query_parameters(CallbacksQuery)),
            )
        },
        "/admin/api/accounts/{api_key}/callbacks/replay": {
            "post": admin_operation(
                "make the account's dead callback events pending again, due now (audited)",
                "200",
                AdminReplayedResponse,
                _NAMED,
                parameters=("api_key",),
            )
        },
        "/admin/api/audit": {
            "get": admin_operation(
                "the audit log, newest first",
                "200",
                AdminAuditResponse,
                ("400", *_READS),
                extra=tuple(query_parameters(AuditQuery)),
            )
        },
        "/admin/api/usage": {
            "get": admin_operation(
                "per account, carrier and day: messages, segments, charged, refunded (the records, added up)",
                "200",
                AdminUsageResponse,
                ("400", "404", *_READS),
                extra=tuple(query_parameters(UsageQuery)),
            )
        },
    }


@functools.cache
def _admin_schemas(providers: tuple[str, ...]) -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(_ADMIN_MODELS, ref_template=SCHEMA_REF)
    for request in (CreateAccountRequest, PatchAccountRequest):
        schemas[request.__name__]["properties"]["providers"]["items"]["enum"] = list(providers)
    return schemas


def _withadmin_operation(document: dict[str, Any], providers: tuple[str, ...]) -> dict[str, Any]:
    document["paths"].update(_admin_paths())
    document["components"]["schemas"] = {**_admin_schemas(providers), **document["components"]["schemas"]}
    document["components"]["securitySchemes"]["AdminBearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "a token of admin.tokens",
    }
    document["tags"] = [{"name": "admin", "description": "the platform team's API (/admin/api/)"}]
    return document


def openapi_document(providers: list[str], *, admin: bool = False) -> dict[str, Any]:
    """The document; with the admin API's operations when ``admin`` (tokens are configured)."""
    document = {
        "openapi": "3.1.0",
        "info": {"title": "SMS Edge", "version": __version__},
        "security": [{"ApiKey": [], "ApiSecret": []}],
        "paths": {
            "/api/sms/send": _post("发送短信", SendRequest, SendResponse),
            "/api/sms/batch-send": _post("批量发送短信", BatchRequest, BatchResponse),
            "/api/sms/records": {
                "get": {
                    "summary": "查询发送记录",
                    "parameters": query_parameters(RecordsQuery),
                    "responses": {
                        "200": json_content(schema_ref(RecordsResponse), "a page of records"),
                        **error_responses("400", "401", "403", "500", "503"),
                    },
                }
            },
            "/api/account/info": {
                "get": {
                    "summary": "查询账户信息",
                    "responses": {
                        "200": json_content(schema_ref(AccountResponse), "the account"),
                        **error_responses("401", "403", "500", "503"),
                    },
                }
            },
        },
        "components": {
            "schemas": _schemas(tuple(providers)),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "ApiSecret": {"type": "apiKey", "in": "header", "name": "X-API-Secret"},
            },
        },
    }
    return _withadmin_operation(document, tuple(providers)) if admin else document


async def serve_openapi(request: web.Request) -> web.Response:
    # A plain response of the root app on purpose: the document's example numbers are meant to be
    # seen whole, and the API's masking middleware never sees it.
    config = request.app[RUNTIME].current.config
    document = openapi_document(sorted(config.providers.backends), admin=bool(config.admin.tokens))
    return web.Response(body=orjson.dumps(document), content_type="application/json", charset="utf-8")
