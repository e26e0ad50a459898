"""Masking, the last line of defence: no phone-shaped value leaves in a response, whoever wrote it."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from gateway.errors import ApiError
from gateway.phones import SAFE_KEYS, mask_payload, scrub
from gateway.responses import json_response
from tests.conftest import DEMO_HEADERS

# Every form of the same few numbers a careless handler or a carrier message could carry.
FULL = ("13912345678", "13712345678", "4155550123")


def leaks(text: str) -> list[str]:
    """The full numbers still readable in ``text``, separators ignored."""
    digits = re.sub(r"[^0-9]", "", text)
    return [number for number in FULL if number in digits or number in text]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13912345678", "139****5678"),
        ("验证码已发送至13912345678,请查收", "验证码已发送至139****5678,请查收"),
        ("call 139 1234 5678 now", "call 139****5678 now"),
        ("call 139-1234-5678 now", "call 139****5678 now"),
        ("tel:13912345678;ext", "tel:139****5678;ext"),
        ("a13912345678b", "a139****5678b"),
        ("1391234567x is not valid", "139****4567x is not valid"),
        ("to 13912345678 and 13712345678", "to 139****5678 and 137****5678"),
    ],
)
def test_scrub_masks_numbers_in_free_text(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "+8613912345678",
        "008613712345678",
        "+86 139 1234 5678",
        "86-139-1234-5678",
        "+14155550123",
        "+1 415-555-0123",
        "(415) 555-0123 called",
        "手机号 +8613912345678 与 008613712345678 均失败",
    ],
)
def test_scrub_leaves_no_full_number_in_international_forms(text):
    masked = scrub(text)
    assert "****" in masked
    assert leaks(masked) == []


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01 12:00:00",
        "created 2024-01-01 12:00:00, updated 2024-12-31 23:59:59",
        "验证码 123456",
        "共 100 条,失败 3 条",
        "余额 99.95 元",
        "retry in 60s, code 4001",
        "template SMS_12345",
        "",
    ],
)
def test_scrub_leaves_dates_and_short_numbers_alone(text):
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"phone": "13912345678"}, {"phone": "139****5678"}),
        ({"13912345678": True}, {"139****5678": True}),
        ({"results": ["13912345678", ["x 13712345678"]]},
         {"results": ["139****5678", ["x 137****5678"]]}),
        ({"a": {"b": [{"c": {"d": "to 13912345678"}}]}}, {"a": {"b": [{"c": {"d": "to 139****5678"}}]}}),
        ([{"note": "13912345678"}, "13712345678"], [{"note": "139****5678"}, "137****5678"]),
        ({"total": 3, "balance": 99.95, "ok": True, "none": None},
         {"total": 3, "balance": 99.95, "ok": True, "none": None}),
        ({"note": "2024-01-01 12:00:00", "params": {"code": "123456"}},
         {"note": "2024-01-01 12:00:00", "params": {"code": "123456"}}),
    ],
)
def test_mask_payload_walks_values_keys_and_nesting(payload, expected):
    assert mask_payload(payload) == expected


def test_mask_payload_leaves_safe_keys_untouched():
    payload = {
        "message_id": "12345678-1234-4234-8234-123456789012",
        "request_id": "1234567890abcdef1234567890abcdef",
        "template_id": "SMS_123456789",
        "created_at": "2024-01-01 12:00:00",
        "updated_at": "2024-01-02 08:30:00",
        "code": "INVALID_PARAMS",
        "provider": "mock",
        "status": "success",
        "verification_status": "approved",
        # counts and ids: large integers that are not numbers to hide
        "id": 13912345678, "total": 13912345678, "page": 1, "per_page": 10,
        "success_count": 1, "failed_count": 0, "total_sent": 13912345678,
        "today_sent": 0, "balance": 13912345678,
    }
    assert set(payload) == SAFE_KEYS
    assert mask_payload(payload) == payload
    assert mask_payload({"results": [payload]}) == {"results": [payload]}


def future_handler(answer):
    """A route a future contributor adds under /api/, answering with whatever ``answer`` gives."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return answer()

    return lambda app: app.router.add_get("/api/debug/peek", handler)


LEAKY = {
    "phone": "13912345678",
    "message": "已发送至 +8613912345678",
    "data": {
        "to": ["+14155550123", {"raw": "008613712345678", "note": "retry 139-1234-5678"}],
        "13712345678": "key",
    },
}


async def test_a_future_handler_cannot_leak_a_full_number(make_client):
    client = await make_client(setup=future_handler(lambda: json_response(LEAKY)))
    response = await client.get("/api/debug/peek", headers=DEMO_HEADERS)
    text = await response.text()
    assert response.status == 200
    assert leaks(text) == []
    body = await response.json()
    assert body["phone"] == "139****5678"
    assert "****" in body["message"]
    assert body["data"]["to"][0].endswith("0123") and "****" in body["data"]["to"][0]
    assert set(body["data"]["to"][1]) == {"raw", "note"}
    assert body["data"]["to"][1]["raw"].endswith("5678")
    assert list(body["data"])[1] == "137****5678"


async def test_a_future_handler_error_message_is_masked(make_client):
    def fail():
        raise ApiError(400, "INVALID_PARAMS", "号码 13912345678 与 +14155550123 无效")

    client = await make_client(setup=future_handler(fail))
    response = await client.get("/api/debug/peek", headers=DEMO_HEADERS)
    body = await response.json()
    assert response.status == 400
    assert body["code"] == "INVALID_PARAMS"
    assert body["message"].startswith("号码 139****5678 与 ")
    assert leaks(await response.text()) == []


async def test_an_http_exception_text_from_a_handler_does_not_reach_the_client(make_client):
    def fail():
        raise web.HTTPBadRequest(text="bad number 13912345678")

    client = await make_client(setup=future_handler(fail))
    response = await client.get("/api/debug/peek", headers=DEMO_HEADERS)
    assert response.status == 400
    assert (await response.json())["code"] == "INVALID_PARAMS"
    assert leaks(await response.text()) == []


async def test_a_number_in_a_json_integer_is_masked_too(make_client):
    # A handler that returns a number column as it was stored (an int) leaks it just the same.
    client = await make_client(setup=future_handler(lambda: json_response({"mobile": 13912345678})))
    response = await client.get("/api/debug/peek", headers=DEMO_HEADERS)
    assert response.status == 200
    assert leaks(await response.text()) == []


async def test_a_handler_using_aiohttps_own_json_response_is_masked_too(make_client):
    # ``web.json_response`` is what any aiohttp author reaches for first.
    client = await make_client(setup=future_handler(lambda: web.json_response(LEAKY)))
    response = await client.get("/api/debug/peek", headers=DEMO_HEADERS)
    assert response.status == 200
    assert leaks(await response.text()) == []
