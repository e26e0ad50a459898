"""GET /openapi.json: the document, and whether the server does what the document says.

A small JSON-schema walker (the subset the document uses) generates bodies the schema calls valid
and mutates them into ones it calls invalid; the server must answer 200 and 400 respectively.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.config.model import BucketConfig
from tests.conftest import add_account

ROUTES = {
    "/api/sms/send": "post",
    "/api/sms/batch-send": "post",
    "/api/sms/records": "get",
    "/api/account/info": "get",
}
BACKUP = {"backends": {"backup": {"plugin": "mock", "price": 0.01}}}
ROOMY = BucketConfig(rate=1000.0, burst=100_000)
REAL_PHONE = "13800138000"


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def is_type(value: Any, kind: str | list[str]) -> bool:
    if isinstance(kind, list):  # OpenAPI 3.1: a list of types
        return any(is_type(value, one) for one in kind)
    if kind == "null":
        return value is None
    if kind in ("integer", "number", "boolean") and isinstance(value, bool):
        return kind == "boolean"
    python = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": int | float,
        "boolean": bool,
    }[kind]
    return isinstance(value, python)


def violations(doc: dict[str, Any], schema: dict[str, Any], value: Any, at: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema`` (empty when it conforms)."""
    schema = resolve(doc, schema)
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not violations(doc, s, value, at)]
        return [] if len(matching) == 1 else [f"{at}: oneOf"]
    if "anyOf" in schema:
        matching = [s for s in schema["anyOf"] if not violations(doc, s, value, at)]
        return [] if matching else [f"{at}: anyOf"]
    if "type" in schema and not is_type(value, schema["type"]):
        return [f"{at}: not {schema['type']}"]
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{at}: enum")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{at}: pattern")
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            found.append(f"{at}: length")
    if isinstance(value, int | float) and not schema.get("minimum", value) <= value <= schema.get(
        "maximum", value
    ):
        found.append(f"{at}: range")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            found.append(f"{at}: items")
        for index, item in enumerate(value):
            found += violations(doc, schema.get("items", {}), item, f"{at}[{index}]")
    if isinstance(value, dict):
        found += [f"{at}.{name}: required" for name in schema.get("required", ()) if name not in value]
        if len(value) > schema.get("maxProperties", len(value)):
            found.append(f"{at}: maxProperties")
        names = schema.get("propertyNames", {})
        found += [f"{at}.{name}: name" for name in value if violations(doc, names, name, at)]
        for name, item in value.items():
            extra = schema.get("additionalProperties", {})
            sub = schema.get("properties", {}).get(name, extra)
            if sub is False:
                found.append(f"{at}.{name}: additional")
            else:
                found += violations(doc, sub if isinstance(sub, dict) else {}, item, f"{at}.{name}")
    return found


def from_pattern(pattern: str, length: int) -> str:
    """A string of ``length`` from a ``^[class]{m,n}$`` pattern, cycling through the class."""
    match = re.fullmatch(r"\^\[(.+)\]\{\d+,\d+\}\$", pattern)
    assert match, pattern
    spec, chars = match.group(1).replace("\\", ""), []
    for found in re.finditer(r"(.)-(.)|(.)", spec):
        low, high, single = found.groups()
        chars += [chr(c) for c in range(ord(low), ord(high) + 1)] if low else [single]
    return "".join(chars[i % len(chars)] for i in range(length))


def valid_bodies(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Bodies built from the schema: its phone example, enum values, pattern extremes, limits."""
    props = resolve(doc, doc["components"]["schemas"][name])["properties"]
    template, provider = props["template_id"]["pattern"], props["provider"]["enum"]
    params = props["params"]
    text_limit = params["additionalProperties"]["anyOf"][0]["maxLength"]
    phones = {"phone": REAL_PHONE} if "phone" in props else {"phones": [REAL_PHONE, "+14155550123"]}
    return [
        {**phones, "template_id": from_pattern(template, 1)},
        {**phones, "template_id": from_pattern(template, 64), "params": {"code": "x" * text_limit}},
        {**phones, "template_id": "123456", "provider": provider[0], "params": {"n": 5, "f": 1.5}},
        {
            **phones,
            "template_id": "123456",
            "provider": provider[-1],
            "params": {f"k{i}": str(i) for i in range(params["maxProperties"])},
        },
        {
            **phones,
            "template_id": "123456",
            "params": {"p" * params["propertyNames"]["maxLength"]: "longest key"},
        },
    ]


def invalid_bodies(valid: dict[str, Any]) -> list[dict[str, Any]]:
    many = [f"1380013{i:04d}" for i in range(101)]
    phone = (
        ({"phone": 13800138000},)
        if "phone" in valid
        else ({"phones": []}, {"phones": many}, {"phones": "13800138000"}, {"phones": ["abc"]})
    )
    return [
        *({**valid, **change} for change in phone),
        *({k: v for k, v in valid.items() if k != drop} for drop in ("template_id", *phone[0])),
        {**valid, "template_id": 123456},
        {**valid, "template_id": "a b"},
        {**valid, "template_id": "x" * 65},
        {**valid, "extra": 1},
        {**valid, "provider": "nosuch"},
        {**valid, "provider": 7},
        {**valid, "params": ["1234"]},
        {**valid, "params": {"c": True}},
        {**valid, "params": {"c": {"a": 1}}},
        {**valid, "params": {"c": "x" * 257}},
        {**valid, "params": {f"k{i}": "v" for i in range(21)}},
        {**valid, "params": {"p" * 65: "long key"}},
        {**valid, "params": {"": "empty key"}},
    ]


@pytest.fixture
async def api(make_client):
    client = await make_client(providers=BACKUP)
    _, headers = await add_account(client, "fuzz", balance_milli=1_000_000, ratelimit=ROOMY)
    document = await (await client.get("/openapi.json")).json()
    return client, headers, document


async def test_document_is_openapi_3_with_every_api_route(api):
    client, _, doc = api
    assert doc["openapi"].startswith("3.")
    assert {path: list(item) for path, item in doc["paths"].items()} == {
        path: [method] for path, method in ROUTES.items()
    }
    served = {r.canonical for r in client.app.router.resources() if r.canonical.startswith("/api/")}
    assert served == set(doc["paths"])
    for path, method in ROUTES.items():
        responses = doc["paths"][path][method]["responses"]
        assert {"200", "401"} <= set(responses)


async def test_every_reference_resolves(api):
    _, _, doc = api
    refs = re.findall(r"'\$ref': '([^']+)'", repr(doc))
    assert refs
    for ref in refs:
        assert resolve(doc, {"$ref": ref})


async def test_security_schemes_are_the_two_headers_required_together(api):
    client, _, doc = api
    schemes = doc["components"]["securitySchemes"]
    by_header = {s["name"]: s for s in schemes.values()}
    assert set(by_header) == {"X-API-Key", "X-API-Secret"}
    assert all(s["type"] == "apiKey" and s["in"] == "header" for s in schemes.values())
    assert doc["security"] == [{name: [] for name in schemes}]
    unauthenticated = await client.get("/api/account/info")
    assert unauthenticated.status == 401


async def test_limits_and_enums_match_the_server(api):
    _, _, doc = api
    schemas = doc["components"]["schemas"]
    assert schemas["BatchRequest"]["properties"]["phones"]["maxItems"] == 100
    assert schemas["BatchRequest"]["properties"]["phones"]["minItems"] == 1
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/sms/records"]["get"]["parameters"]}
    assert (params["per_page"]["minimum"], params["per_page"]["maximum"]) == (1, 100)
    assert params["per_page"]["default"] == 10 and params["page"]["default"] == 1
    assert set(params["status"]["enum"]) == {"pending", "success", "failed"}
    for name in ("SendRequest", "BatchRequest"):
        assert schemas[name]["properties"]["provider"]["enum"] == ["backup", "mock"]


@pytest.mark.parametrize(
    ("path", "schema"), [("/api/sms/send", "SendRequest"), ("/api/sms/batch-send", "BatchRequest")]
)
async def test_bodies_the_schema_accepts_are_accepted(api, path, schema):
    client, headers, doc = api
    documented = doc["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
    problems = []
    for body in valid_bodies(doc, schema):
        assert violations(doc, doc["components"]["schemas"][schema], body) == [], body
        response = await client.post(path, json=body, headers=headers)
        if response.status != 200:
            problems.append((body, response.status, (await response.json())["message"]))
        else:
            assert violations(doc, documented["schema"], await response.json()) == []
    assert problems == []


async def test_the_phone_example_is_a_number_the_schema_and_the_server_accept(api):
    client, headers, doc = api
    schemas = doc["components"]["schemas"]
    example = schemas["SendRequest"]["properties"]["phone"]["example"]
    assert schemas["BatchRequest"]["properties"]["phones"]["items"]["example"] == example
    body = {"phone": example, "template_id": "123456"}
    assert violations(doc, schemas["SendRequest"], body) == []
    response = await client.post("/api/sms/send", json=body, headers=headers)
    assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    ("path", "schema"), [("/api/sms/send", "SendRequest"), ("/api/sms/batch-send", "BatchRequest")]
)
async def test_bodies_the_schema_refuses_are_400(api, path, schema):
    client, headers, doc = api
    [valid, *_] = valid_bodies(doc, schema)
    for body in invalid_bodies(valid):
        assert violations(doc, doc["components"]["schemas"][schema], body), body
        response = await client.post(path, json=body, headers=headers)
        assert response.status == 400, (body, await response.text())


QUERY_VALUES = {
    "page": ["1", "2", "1000000", "0", "-1", "abc", "1000001", "1.5"],
    "per_page": ["1", "10", "100", "0", "101", "ten"],
    "status": ["pending", "success", "failed", "", "sent", "SUCCESS"],
    "start_time": ["2024-01-01 00:00:00", "2024-01-01", "2024/01/01 00:00:00", "now"],
    "end_time": ["2030-12-31 23:59:59", "2030-12-31T23:59:59", ""],
}


async def test_records_query_parameters_behave_as_documented(api):
    client, headers, doc = api
    parameters = doc["paths"]["/api/sms/records"]["get"]["parameters"]
    assert {p["name"] for p in parameters} == set(QUERY_VALUES)
    for parameter in parameters:
        schema = parameter["schema"]
        for raw in QUERY_VALUES[parameter["name"]]:
            typed = int(raw) if schema["type"] == "integer" and re.fullmatch(r"-?\d+", raw) else raw
            expected = 400 if violations(doc, schema, typed) else 200
            response = await client.get("/api/sms/records", params={parameter["name"]: raw}, headers=headers)
            assert response.status == expected, (parameter["name"], raw, await response.text())


async def test_read_responses_match_their_documented_schemas(api):
    client, headers, doc = api
    await client.post("/api/sms/send", json={"phone": "13800138000", "template_id": "1"}, headers=headers)
    for path in ("/api/sms/records", "/api/account/info"):
        response = await client.get(path, headers=headers)
        documented = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert violations(doc, documented["schema"], await response.json()) == [], path
    error = await client.post("/api/sms/send", json={}, headers=headers)
    documented = doc["paths"]["/api/sms/send"]["post"]["responses"]["400"]["content"]
    assert violations(doc, documented["application/json"]["schema"], await error.json()) == []


ADMIN_TOKEN = "openapi-admin-token-0123456789abcdef"
ADMIN_ROUTES = {
    "/admin/api/accounts": ["get", "post"],
    "/admin/api/accounts/{api_key}": ["patch"],
    "/admin/api/accounts/{api_key}/topup": ["post"],
    "/admin/api/accounts/{api_key}/rotate-secret": ["post"],
    "/admin/api/accounts/{api_key}/callback-secret": ["post"],
    "/admin/api/accounts/{api_key}/callbacks": ["get"],
    "/admin/api/accounts/{api_key}/callbacks/replay": ["post"],
    "/admin/api/messages/{message_id}": ["get"],
    "/admin/api/audit": ["get"],
    "/admin/api/usage": ["get"],
}


async def test_the_admin_api_is_documented_tagged_and_bearer_only_while_tokens_are_set(make_client):
    client = await make_client(admin={"tokens": [{"name": "ops", "token": ADMIN_TOKEN}]})
    doc = await (await client.get("/openapi.json")).json()
    admin_paths = {path: list(item) for path, item in doc["paths"].items() if path.startswith("/admin/")}
    assert admin_paths == ADMIN_ROUTES
    [admin] = [
        info["app"]
        for resource in client.app.router.resources()
        if (info := resource.get_info()).get("prefix") == "/admin/api"
    ]
    assert {r.canonical for r in admin.router.resources()} == set(ADMIN_ROUTES)
    assert doc["components"]["securitySchemes"]["AdminBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a token of admin.tokens",
    }
    for path, methods in ADMIN_ROUTES.items():
        for method in methods:
            operation = doc["paths"][path][method]
            assert operation["tags"] == ["admin"] and operation["security"] == [{"AdminBearer": []}]
            assert "401" in operation["responses"]
    for path in ROUTES:
        assert "tags" not in doc["paths"][path][ROUTES[path]]
    providers = doc["components"]["schemas"]["CreateAccountRequest"]["properties"]["providers"]
    assert providers["items"]["enum"] == ["mock"] and providers["uniqueItems"] is True
    refs = re.findall(r"'\$ref': '([^']+)'", repr(doc))
    assert all(resolve(doc, {"$ref": ref}) for ref in refs)
    assert ADMIN_TOKEN not in await (await client.get("/openapi.json")).text()


async def test_without_tokens_the_document_has_no_admin_api(api):
    _, _, doc = api
    assert not [path for path in doc["paths"] if path.startswith("/admin")]
    assert "AdminBearer" not in doc["components"]["securitySchemes"] and "tags" not in doc
