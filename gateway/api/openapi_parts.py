"""The pieces every OpenAPI operation is built from, for the tenant's API and the admin API alike.

A model is named by a ``$ref`` to its generated schema, an error answer by the codes its status
can carry (spelt in ``gateway.errors``), a query model becomes its query parameters: written once
here, so ``openapi.py`` only says which operation answers what.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.api.idempotency import HEADER, KEY_PATTERN, MAX_KEY_LENGTH
from gateway.api.models import Error
from gateway.errors import (
    ACCOUNT_DISABLED,
    ACCOUNT_EXISTS,
    IDEMPOTENCY_CONFLICT,
    INSUFFICIENT_BALANCE,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    PHONE_RATE_LIMITED,
    PROVIDER_ERROR,
    PROVIDER_FORBIDDEN,
    PROVIDER_TIMEOUT,
    QUOTA_EXCEEDED,
    REQUEST_TIMEOUT,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNVERIFIED,
)

__all__ = [
    "ADMIN_CODES",
    "ERROR_CODES",
    "IDEMPOTENCY_KEY",
    "SCHEMA_REF",
    "admin_operation",
    "error_responses",
    "json_content",
    "query_parameters",
    "schema_ref",
]

SCHEMA_REF = "#/components/schemas/{name}"
ERROR_CODES = {
    "400": INVALID_PARAMS,
    "401": UNAUTHORIZED,
    "403": ", ".join((UNVERIFIED, INSUFFICIENT_BALANCE, ACCOUNT_DISABLED, PROVIDER_FORBIDDEN)),
    "408": REQUEST_TIMEOUT,
    "409": IDEMPOTENCY_CONFLICT,
    "413": PAYLOAD_TOO_LARGE,
    "429": ", ".join((PHONE_RATE_LIMITED, QUOTA_EXCEEDED)),
    "404": NOT_FOUND,
    "405": METHOD_NOT_ALLOWED,
    "500": INTERNAL_ERROR,
    "502": PROVIDER_ERROR,
    "503": UNAVAILABLE,
    "504": PROVIDER_TIMEOUT,
}
IDEMPOTENCY_KEY = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "同一账户 24 小时内重复使用:返回首次响应且不再发送;请求体不同则 409",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_PATTERN},
}


def schema_ref(model: type[msgspec.Struct]) -> dict[str, str]:
    return {"$ref": SCHEMA_REF.format(name=model.__name__)}


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_responses(*statuses: str, codes: dict[str, str] = ERROR_CODES) -> dict[str, Any]:
    return {status: json_content(schema_ref(Error), codes[status]) for status in statuses}


def query_parameters(model: type[msgspec.Struct]) -> list[dict[str, Any]]:
    """Each field of a query model as an optional query parameter."""
    _, components = msgspec.json.schema_components([model], ref_template=SCHEMA_REF)
    fields = components[model.__name__]["properties"]
    return [
        {"name": name, "in": "query", "required": False, "schema": schema} for name, schema in fields.items()
    ]


ADMIN_CODES = {
    **ERROR_CODES,
    "401": f"{UNAUTHORIZED}: a missing or wrong admin token",
    "409": f"{ACCOUNT_EXISTS} (create), {IDEMPOTENCY_CONFLICT} (top-up)",
}


def admin_operation(
    summary: str,
    status: str,
    answer: type[msgspec.Struct],
    errors: tuple[str, ...],
    *,
    body: type[msgspec.Struct] | None = None,
    parameters: tuple[str, ...] = (),
    extra: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """One admin operation: bearer auth, tag ``admin``, its path ``parameters`` and body."""
    operation: dict[str, Any] = {
        "tags": ["admin"],
        "summary": summary,
        "security": [{"AdminBearer": []}],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in parameters
        ]
        + list(extra),
        "responses": {
            status: json_content(schema_ref(answer), summary),
            **error_responses(*errors, codes=ADMIN_CODES),
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_ref(body)}},
        }
    return operation
