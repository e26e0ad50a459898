"""POST /api/sms/send: the seed's success body, and every refusal the route can give."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from collections.abc import Callable

import msgspec
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.api.models import BatchRequest, SendRequest
from gateway.api.validation import batch_input, parse_json_object, send_input
from gateway.app import create_app
from gateway.errors import ApiError
from gateway.ids import new_hex_id, new_uuid
from gateway.sending.model import SendInput
from tests.conftest import DEMO_HEADERS, SEND_BODY, add_account


async def test_seed_example_succeeds_with_the_seed_body(client):
    response = await client.post("/api/sms/send", json=SEND_BODY, headers=DEMO_HEADERS)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.charset == "utf-8"
    body = await response.json()
    assert body["success"] is True
    assert body["message"] == "短信发送成功"
    assert body["data"]["phone"] == "138****8000"
    assert len(body["data"]["message_id"]) >= 16
    assert body["data"]["provider"] == "mock"


@pytest.mark.parametrize("phone", ["13800138000", "+8613800138000", "008613800138000", "+14155550123"])
async def test_accepted_phone_forms(client, phone):
    response = await client.post("/api/sms/send", json={**SEND_BODY, "phone": phone}, headers=DEMO_HEADERS)
    body = await response.json()
    assert response.status == 200, body
    digits = "".join(ch for ch in phone if ch.isdigit())
    assert digits[-11:] not in str(body)
    assert "****" in body["data"]["phone"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"template_id": "123456"}, "phone"),
        ({"phone": "13800138000"}, "template_id"),
        ({"phone": "12345", "template_id": "123456"}, "手机号"),
        ({"phone": "010-12345678", "template_id": "123456"}, "手机号"),
        ({"phone": 13800138000, "template_id": "123456"}, "手机号"),
        ({"phone": "13800138000", "template_id": ""}, "template_id"),
        ({"phone": "13800138000", "template_id": "a b"}, "template_id"),
        ({"phone": "13800138000", "template_id": 123456}, "template_id"),
        ({**SEND_BODY, "params": ["1234"]}, "params"),
        ({**SEND_BODY, "params": {"code": {"nested": 1}}}, "params"),
        ({**SEND_BODY, "params": {"code": True}}, "params"),
        ({**SEND_BODY, "params": {"code": "x" * 257}}, "params"),
        ({**SEND_BODY, "provider": "nosuch"}, "服务商"),
        ({**SEND_BODY, "provider": 7}, "provider"),
        ({**SEND_BODY, "extra": 1}, "未知参数"),
    ],
)
async def test_invalid_params_are_400_with_a_reason(client, body, fragment):
    response = await client.post("/api/sms/send", json=body, headers=DEMO_HEADERS)
    payload = await response.json()
    assert response.status == 400
    assert payload["code"] == "INVALID_PARAMS"
    assert payload["success"] is False
    assert fragment in payload["message"]
    assert payload["request_id"] == response.headers["X-Request-ID"]
    assert "13800138000" not in await response.text()


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'"text"', b"\xff\xfe{}", b"null"])
async def test_malformed_json_is_400(client, raw):
    response = await client.post(
        "/api/sms/send", data=raw, headers={**DEMO_HEADERS, "Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["code"] == "INVALID_PARAMS"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": DEMO_HEADERS["X-API-Key"]},
        {"X-API-Secret": DEMO_HEADERS["X-API-Secret"]},
        {"X-API-Key": "sk_unknown", "X-API-Secret": DEMO_HEADERS["X-API-Secret"]},
        {"X-API-Key": DEMO_HEADERS["X-API-Key"], "X-API-Secret": "wrong-secret-value"},
    ],
)
async def test_every_auth_failure_is_the_same_401(client, headers):
    response = await client.post("/api/sms/send", json=SEND_BODY, headers=headers)
    body = await response.json()
    assert response.status == 401
    assert body["code"] == "UNAUTHORIZED"
    assert body["message"] == "认证失败,API Key 或 Secret 无效"


@pytest.mark.parametrize("status", ["pending", "rejected"])
async def test_unverified_account_cannot_send_but_can_read(client, status):
    _, headers = await add_account(client, "unverified", balance_milli=10_000, verification_status=status)
    response = await client.post("/api/sms/send", json=SEND_BODY, headers=headers)
    assert response.status == 403
    assert (await response.json())["code"] == "UNVERIFIED"
    batch = await client.post(
        "/api/sms/batch-send", json={"phones": ["13800138000"], "template_id": "1"}, headers=headers
    )
    assert batch.status == 403
    for path in ("/api/account/info", "/api/sms/records"):
        assert (await client.get(path, headers=headers)).status == 200


async def test_insufficient_balance_is_403_with_the_seed_message_and_writes_nothing(client):
    _, headers = await add_account(client, "poor", balance_milli=49)  # the mock costs 50
    response = await client.post("/api/sms/send", json=SEND_BODY, headers=headers)
    body = await response.json()
    assert response.status == 403
    assert body["code"] == "INSUFFICIENT_BALANCE"
    assert body["message"] == "发送失败:余额不足"
    records = await (await client.get("/api/sms/records", headers=headers)).json()
    assert records["data"]["total"] == 0
    info = await (await client.get("/api/account/info", headers=headers)).json()
    assert info["data"]["balance"] == 0.04


async def test_disabled_account_is_403_on_every_route(client):
    account, headers = await add_account(client, "gone", balance_milli=10_000)
    from gateway.keys import STORE

    await client.app[STORE].update_account(account.api_key, disabled=True)
    for method, path in (("POST", "/api/sms/send"), ("GET", "/api/account/info")):
        response = await client.request(method, path, json=SEND_BODY, headers=headers)
        assert response.status == 403
        assert (await response.json())["code"] == "ACCOUNT_DISABLED"


async def test_provider_outside_the_accounts_list_is_403(make_client):
    client = await make_client(providers={"backends": {"mock2": {"plugin": "mock", "price": 0.01}}})
    _, headers = await add_account(client, "narrow", balance_milli=10_000, providers=("mock",))
    response = await client.post("/api/sms/send", json={**SEND_BODY, "provider": "mock2"}, headers=headers)
    assert response.status == 403
    assert (await response.json())["code"] == "PROVIDER_FORBIDDEN"
    allowed = await client.post("/api/sms/send", json={**SEND_BODY, "provider": "mock"}, headers=headers)
    assert allowed.status == 200


async def test_carrier_refusal_is_502_refunded_and_recorded_failed(make_client):
    client = await make_client(providers={"backends": {"mock": {"fail_rate": 1.0}}})
    response = await client.post("/api/sms/send", json=SEND_BODY, headers=DEMO_HEADERS)
    body = await response.json()
    assert response.status == 502
    assert body["code"] == "PROVIDER_ERROR"
    assert "MOCK_REFUSED" in body["message"]
    info = await (await client.get("/api/account/info", headers=DEMO_HEADERS)).json()
    assert info["data"]["balance"] == 100.0
    assert info["data"]["total_sent"] == 0
    records = await (await client.get("/api/sms/records", headers=DEMO_HEADERS)).json()
    [record] = records["data"]["records"]
    assert record["status"] == "failed"
    assert "MOCK_REFUSED" in record["error"]


async def test_carrier_timeout_is_504_and_recorded_failed(make_client):
    client = await make_client(providers={"backends": {"mock": {"latency_ms": 2000, "timeout": 0.05}}})
    response = await client.post("/api/sms/send", json=SEND_BODY, headers=DEMO_HEADERS)
    assert response.status == 504
    assert (await response.json())["code"] == "PROVIDER_TIMEOUT"
    records = await (await client.get("/api/sms/records", headers=DEMO_HEADERS)).json()
    assert records["data"]["records"][0]["status"] == "failed"


async def test_a_bug_is_a_generic_500_without_detail(aiohttp_client, make_config, caplog):
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail for +8613800138000 in /srv/file.py")

    client = await aiohttp_client(create_app(make_config(), api_routes=[web.get("/broken", broken)]))
    response = await client.get("/api/broken", headers=DEMO_HEADERS)
    text = await response.text()
    assert response.status == 500
    assert (await response.json())["code"] == "INTERNAL_ERROR"
    assert "secret detail" not in text and "13800138000" not in text and "file.py" not in text


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/nothing-here", 404, "NOT_FOUND"),
        ("GET", "/nothing", 404, "NOT_FOUND"),
        ("GET", "/api/sms/send", 405, "METHOD_NOT_ALLOWED"),
        ("DELETE", "/api/account/info", 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_unknown_routes_and_methods_use_the_envelope(client, method, path, status, code):
    response = await client.request(method, path, headers=DEMO_HEADERS)
    body = await response.json()
    assert response.status == status
    assert body == {
        "success": False,
        "message": body["message"],
        "code": code,
        "request_id": response.headers["X-Request-ID"],
    }
    if status == 405:
        assert response.headers["Allow"]


async def test_body_over_the_limit_is_413(client):
    big = {**SEND_BODY, "params": {"code": "x" * 70_000}}
    response = await client.post("/api/sms/send", json=big, headers=DEMO_HEADERS)
    assert response.status == 413
    assert (await response.json())["code"] == "PAYLOAD_TOO_LARGE"


async def test_chunked_body_over_the_limit_is_413(client):
    async def chunks():
        for _ in range(100):
            yield b"x" * 1024

    response = await client.post(
        "/api/sms/send", data=chunks(), headers={**DEMO_HEADERS, "Content-Type": "application/json"}
    )
    assert response.status == 413
    assert (await response.json())["code"] == "PAYLOAD_TOO_LARGE"


async def test_request_id_is_echoed_when_sane_and_replaced_when_not(client):
    sane = await client.get("/api/account/info", headers={**DEMO_HEADERS, "X-Request-ID": "abc-123"})
    assert sane.headers["X-Request-ID"] == "abc-123"
    insane = await client.get("/api/account/info", headers={**DEMO_HEADERS, "X-Request-ID": "x" * 500})
    assert insane.headers["X-Request-ID"] != "x" * 500
    assert len(insane.headers["X-Request-ID"]) == 32


async def test_a_request_id_holding_a_phone_number_is_replaced_not_echoed(client, caplog):
    caplog.set_level(logging.INFO)
    response = await client.post(
        "/api/sms/send", json={"phone": "1"}, headers={**DEMO_HEADERS, "X-Request-ID": "call-13912345678"}
    )
    assert response.status == 400
    assert "13912345678" not in response.headers["X-Request-ID"]
    assert "13912345678" not in await response.text() and "13912345678" not in caplog.text


async def test_a_declared_template_parameter_that_is_missing_is_400_and_costs_nothing(make_client):
    client = await make_client(templates={"777": {"params": ["code", "minutes"]}})
    response = await client.post(
        "/api/sms/send",
        json={"phone": "13800138000", "template_id": "777", "params": {"code": "1234"}},
        headers=DEMO_HEADERS,
    )
    body = await response.json()
    assert response.status == 400
    assert "minutes" in body["message"]
    info = await (await client.get("/api/account/info", headers=DEMO_HEADERS)).json()
    assert info["data"]["balance"] == 100.0
    complete = await client.post(
        "/api/sms/send",
        json={"phone": "13800138000", "template_id": "777", "params": {"code": "1234", "minutes": 5}},
        headers=DEMO_HEADERS,
    )
    assert complete.status == 200


async def test_the_413_message_states_a_large_limit_readably(make_client):
    client = await make_client(server={"max_body_bytes": 10_485_760})
    response = await client.post(
        "/api/sms/send",
        data=io.BytesIO(b"x" * 10_485_761),
        headers={**DEMO_HEADERS, "Content-Type": "application/json", "Content-Length": str(10_485_761)},
    )
    assert response.status == 413
    assert "10,485,760" in (await response.json())["message"]


# --- the model's decoder and the plain checks agree ---------------------------------------------

_PHONE = st.sampled_from(["13800138000", "+14155550123", "008613800138000", "1", "abc", "13800138000\n"])
_PARAM = st.one_of(
    st.text(max_size=3),
    st.just("x" * 257),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
_OPTIONAL = {
    "params": st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["code", "n", "", "k" * 65]) | st.text(max_size=2), _PARAM, max_size=22
        ),
    ),
    "provider": st.sampled_from(["mock", "nosuch", "bad name", "mock\n"]) | st.none(),
    "extra": st.just(1),
}


def _bodies(phones: str) -> st.SearchStrategy[dict]:
    """Mostly well-formed bodies, with the values that could slip past one way and not the other."""
    phone = _PHONE if phones == "phone" else st.lists(_PHONE, min_size=0, max_size=3)
    template = st.sampled_from(["123456", "a.b-c_d", "x\n", "a b", "", "t" * 65]) | st.integers()
    return st.fixed_dictionaries({phones: phone, "template_id": template}, optional=_OPTIONAL)


def _outcome(parse: Callable[[], SendInput]) -> SendInput | tuple[int, str, str]:
    try:
        return parse()
    except ApiError as error:
        return error.status, error.code, error.message


@pytest.mark.parametrize(
    ("model", "checked", "phones"),
    [(SendRequest, send_input, "phone"), (BatchRequest, batch_input, "phones")],
)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_body_the_model_decodes_gets_what_the_plain_checks_give(model, checked, phones, data):
    body = data.draw(_bodies(phones))
    raw = json.dumps(body).encode()  # the standard library writes integers of any length
    try:
        decoded = msgspec.json.decode(raw, type=model)
    except msgspec.ValidationError:
        return  # the plain checks word this one's 400 alone
    assert _outcome(lambda: checked(decoded)) == _outcome(lambda: checked(parse_json_object(raw)))


def test_ids_have_uuid4_formats_and_do_not_repeat():
    message_ids = [new_uuid() for _ in range(5000)]
    hex_ids = [new_hex_id() for _ in range(5000)]
    assert len(set(message_ids)) == len(set(hex_ids)) == 5000
    for message_id, hex_id in zip(message_ids[:500], hex_ids[:500], strict=True):
        assert str(uuid.UUID(message_id)) == message_id and uuid.UUID(message_id).version == 4
        assert uuid.UUID(hex=hex_id).hex == hex_id and uuid.UUID(hex=hex_id).version == 4
        assert uuid.UUID(message_id).variant == uuid.RFC_4122


def test_a_forked_child_draws_ids_of_its_own():
    new_hex_id()  # the parent holds unused random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_hex_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 64).decode() != new_hex_id()


@pytest.mark.parametrize(
    ("phone", "named"),
    [
        (13800138000, "数字"),
        (138.5, "数字"),
        (["13800138000"], "数组"),
        ({"n": "13800138000"}, "对象"),
        (True, "布尔值"),
    ],
)
async def test_a_phone_of_the_wrong_json_type_is_named_by_its_type(client, phone, named):
    response = await client.post("/api/sms/send", json={**SEND_BODY, "phone": phone}, headers=DEMO_HEADERS)
    body = await response.json()
    assert response.status == 400
    assert body["message"] == f"请求参数错误:手机号无效:phone 应为字符串,收到{named}"
