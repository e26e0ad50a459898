"""Masking, the last line of defence: no phone-shaped value leaves in a response, whoever wrote it."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import pytest
from aiohttp import web
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.api.models import MAX_PAGE
from gateway.app import create_app
from gateway.carriers.base import Carrier, FailureKind, Outcome, SendBatch
from gateway.config.fields import Text
from gateway.config.model import Settings
from gateway.errors import ApiError
from gateway.payload_masking import SAFE_KEYS, mask_payload
from gateway.phones import scrub
from gateway.responses import json_response
from tests import test_log_privacy
from tests.conftest import DEMO_HEADERS, SEND_BODY

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
        ({"results": ["13912345678", ["x 13712345678"]]}, {"results": ["139****5678", ["x 137****5678"]]}),
        ({"a": {"b": [{"c": {"d": "to 13912345678"}}]}}, {"a": {"b": [{"c": {"d": "to 139****5678"}}]}}),
        ([{"note": "13912345678"}, "13712345678"], [{"note": "139****5678"}, "137****5678"]),
        (
            {"total": 3, "balance": 99.95, "ok": True, "none": None},
            {"total": 3, "balance": 99.95, "ok": True, "none": None},
        ),
        (
            {"note": "2024-01-01 12:00:00", "params": {"code": "123456"}},
            {"note": "2024-01-01 12:00:00", "params": {"code": "123456"}},
        ),
    ],
)
def test_mask_payload_walks_values_keys_and_nesting(payload, expected):
    assert mask_payload(payload) == expected


def test_mask_payload_leaves_safe_keys_untouched():
    payload = {
        "message_id": "12345678-1234-4234-8234-123456789012",
        "request_id": "1234567890abcdef1234567890abcdef",
        "created_at": "2024-01-01 12:00:00",
        "updated_at": "2024-01-02 08:30:00",
        "code": "INVALID_PARAMS",
        "provider": "mock",
        "status": "success",
        "verification_status": "approved",
        # counts and ids: large integers that are not numbers to hide
        "id": 13912345678,
        "total": 13912345678,
        "page": 1,
        "per_page": 10,
        "success_count": 1,
        "failed_count": 0,
        "total_sent": 13912345678,
        "today_sent": 0,
        "balance": 13912345678,
    }
    assert set(payload) == SAFE_KEYS
    assert mask_payload(payload) == payload
    assert mask_payload({"results": [payload]}) == {"results": [payload]}


@pytest.mark.parametrize(
    ("template_id", "shown"),
    [
        ("SMS_123456789", "SMS_123456789"),
        ("1234567", "1234567"),
        ("12345678", "12345678"),
        ("13912345678", "139****5678"),
        ("tpl-139-1234-5678", "tpl-139****5678"),
    ],
)
def test_a_template_id_is_masked_by_the_phones_rule_from_nine_digits(template_id, shown):
    assert mask_payload({"template_id": template_id}) == {"template_id": shown}


@pytest.fixture
def peek(aiohttp_client, make_config):
    """``await peek(answer)``: a gateway with a route a future contributor adds to the API, at
    /api/debug/peek, answering with whatever ``answer`` gives."""

    async def build(answer):
        async def handler(request: web.Request) -> web.StreamResponse:
            return answer()

        return await aiohttp_client(create_app(make_config(), api_routes=[web.get("/debug/peek", handler)]))

    return build


LEAKY = {
    "phone": "13912345678",
    "message": "已发送至 +8613912345678",
    "data": {
        "to": ["+14155550123", {"raw": "008613712345678", "note": "retry 139-1234-5678"}],
        "13712345678": "key",
    },
}


async def test_a_future_handler_cannot_leak_a_full_number(peek):
    client = await peek(lambda: json_response(LEAKY))
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


async def test_a_future_handler_error_message_is_masked(peek):
    def fail():
        raise ApiError(400, "INVALID_PARAMS", "号码 13912345678 与 +14155550123 无效")

    client = await peek(fail)
    response = await client.get("/api/debug/peek", headers=DEMO_HEADERS)
    body = await response.json()
    assert response.status == 400
    assert body["code"] == "INVALID_PARAMS"
    assert body["message"].startswith("号码 139****5678 与 ")
    assert leaks(await response.text()) == []


async def test_an_http_exception_text_from_a_handler_does_not_reach_the_client(peek):
    def fail():
        raise web.HTTPBadRequest(text="bad number 13912345678")

    client = await peek(fail)
    response = await client.get("/api/debug/peek", headers=DEMO_HEADERS)
    assert response.status == 400
    assert (await response.json())["code"] == "INVALID_PARAMS"
    assert leaks(await response.text()) == []


async def test_a_number_in_a_json_integer_is_masked_too(peek):
    # A handler that returns a number column as it was stored (an int) leaks it just the same.
    client = await peek(lambda: json_response({"mobile": 13912345678}))
    response = await client.get("/api/debug/peek", headers=DEMO_HEADERS)
    assert response.status == 200
    assert leaks(await response.text()) == []


async def test_a_handler_using_aiohttps_own_json_response_is_masked_too(peek):
    # ``web.json_response`` is what any aiohttp author reaches for first.
    client = await peek(lambda: web.json_response(LEAKY))
    response = await client.get("/api/debug/peek", headers=DEMO_HEADERS)
    assert response.status == 200
    assert leaks(await response.text()) == []


# --- Numbers however a carrier spells them (issue 11) ------------------------------------------

ISSUE_MESSAGE = "blocked 139.0384.3291 (tel_13903843291)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ISSUE_MESSAGE, "blocked 139****3291 (tel_139****3291)"),
        ("139.0384.3291", "139****3291"),
        ("139_0384_3291", "139****3291"),
        ("139/0384/3291", "139****3291"),
        ("(139)0384-3291", "(139****3291"),
        ("139 - 0384 - 3291", "139****3291"),
        ("id13903843291x", "id139****3291x"),
        ("tel_13903843291", "tel_139****3291"),
        ("mobile=13903843291&x=1", "mobile=139****3291&x=1"),
        ("+1 (415) 555-0123", "+1 415****0123"),
        ("+44.7911.123456", "+44 791****3456"),
        ("１３９０３８４３２９１", "１３９****３２９１"),  # full-width digits are digits too
        ("1234567", "****"),  # seven digits: too short to keep any
        ("13912345678 13712345678", "139****5678 137****5678"),  # two numbers in a row
        ("13912345678 2024-01-01 12:00:00", "139****5678 2024-01-01 12:00:00"),
        ("SMS_123456789 and sms_139123456789", "SMS_123456789 and sms_139****6789"),
    ],
)
def test_scrub_masks_numbers_whatever_the_separators_or_letters_around_them(text, expected):
    assert scrub(text) == expected


MESSAGE_ID = "12345678-1234-4234-8234-123456789012"


@pytest.mark.parametrize(
    "text",
    [
        "page 必须是 1-1000000 的整数",  # the range a page may take
        "验证码必须是 100000-999999",
        "余额 1000000.00 元, 限额 10000000",  # round figures
        "余额 100.00 元",
        "余额 123456.78 元",
        "2024-01-01 12:00:00",
        "2024/01/01 12:00:00.123456",
        "2024-01-01T12:00:00.123+08:00",
        f"message {MESSAGE_ID} sent",
        "request 1234567890abcdef1234567890abcdef",
        "request 12345678901234567890123456789012",  # uuid4().hex with no letter: still an id
        "carrier id mock-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "template SMS_123456789",
        "peer 192.168.100.200 port 8080",
        "v1.2.3 took 123 ms, retry 3/5, code 40001",
    ],
)
def test_scrub_leaves_what_is_not_a_number_alone(text):
    assert scrub(text) == text


SEPARATORS = [" ", "-", ".", "_", "/", "(", ")", ") ", " (", " - "]
# Letters, underscores, parentheses and text around a number; never a digit.
NOISE = st.text(alphabet="abcxyzABCXYZ_() tel号码：", max_size=8)
DATE = re.compile(r"(?<!\d)(?:19|20)\d\d([-/.])(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])(?!\d)")
AMOUNT_OR_ADDRESS = re.compile(r"\d{1,6}\.\d{1,2}|\d{1,3}(?:\.\d{1,3}){3}")
PROPERTY = settings(max_examples=200, derandomize=True, database=None, deadline=None)


def not_a_number(spelled: str) -> bool:
    """What scrub leaves alone on purpose: a date inside, a small amount or an IPv4 address."""
    return bool(DATE.search(spelled) or AMOUNT_OR_ADDRESS.fullmatch(spelled))


@st.composite
def spelled_numbers(draw) -> tuple[str, str, str, str]:
    """(digits, text before, the number as spelled, text after)."""
    # Four different digits at least: round figures (1000000, 1-1000000) are not numbers to hide.
    number = draw(
        st.text(alphabet="0123456789", min_size=7, max_size=15).filter(lambda digits: len(set(digits)) >= 4)
    )
    cuts = sorted(draw(st.sets(st.integers(1, len(number) - 1), max_size=len(number) - 1)))
    groups = [number[a:b] for a, b in zip([0, *cuts], [*cuts, len(number)], strict=True)]
    spelled = groups[0] + "".join(draw(st.sampled_from(SEPARATORS)) + group for group in groups[1:])
    assume(not not_a_number(spelled))
    opening = draw(st.sampled_from(["", "+", "("]))
    if opening == "+":
        spelled = f"+{spelled}"
    return number, draw(NOISE) + opening.strip("+"), spelled, draw(NOISE)


@PROPERTY
@given(spelled_numbers())
def test_a_number_is_masked_however_it_is_spelled(case):
    number, before, spelled, after = case
    masked = scrub(before + spelled + after)
    assert masked.startswith(before) and masked.endswith(after)  # the text around is kept
    shown = masked[len(before) : len(masked) - len(after)]
    assert "****" in shown
    assert number not in re.sub(r"[^0-9]", "", masked)
    kept = re.sub(r"[^0-9]", "", shown)
    # First 3 and last 4 digits at most, plus a country code when the numbering plan knew it.
    assert len(kept) <= 7 or (shown.startswith("+") and len(kept) <= 10), shown
    assert scrub(masked) == masked


def at_most_six_digits(text: str) -> str:
    seen = 0
    chars = []
    for ch in text:
        seen += ch.isdigit()
        chars.append("x" if ch.isdigit() and seen > 6 else ch)
    return "".join(chars)


@PROPERTY
@given(st.text(alphabet="0123456789 -._/()+:tel_SMS号码abcdef", max_size=60).map(at_most_six_digits))
def test_text_with_fewer_than_seven_digits_is_returned_unchanged(text):
    assert scrub(text) == text


@PROPERTY
@given(
    st.uuids(version=4),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31)),
    st.integers(0, 99_999_999),
)
def test_ids_times_and_amounts_the_gateway_writes_are_left_alone(message_id, when, fen):
    text = (
        f"message_id={message_id} request_id={message_id.hex} created_at={when:%Y-%m-%d %H:%M:%S} "
        f"at {when.replace(tzinfo=UTC).isoformat()} price {fen / 100:.2f} 元"
    )
    assert scrub(text) == text


# --- Masking twice changes nothing (issue 23.12) -----------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "13600000003 13700000003",  # the issue's: 136****0003 137****0003 became 136************0003
        "13600000003/13700000003",
        "136-0000-0003 137-0000-0003 13800138000",
        "1000000 13912345678",  # a round figure kept beside a number masked
        "0000+8613912345678",  # a plus glued to digits before it
        "+14155550123 +14155550124",
        "+44 7911 123456 13912345678",
        "1234567 7654321 13912345678",
        "13912345678****5",
        "sent to 139****5678 137****5678 and 13612345678",
        "id13903843291x 139.0384.3291 (tel_13903843291)",
    ],
)
def test_masking_masked_text_again_leaves_it_unchanged(text):
    masked = scrub(text)
    assert leaks(masked) == []
    assert scrub(masked) == masked
    assert mask_payload({"note": masked, masked: [masked]}) == {"note": masked, masked: [masked]}


@pytest.mark.parametrize(
    "masked",
    [
        "139****5678",
        "139****5678 137****5678",
        "139****5678/137****5678",
        "+1 415****0123",
        "+852 ****",
        "**** ****",
        "1000000 139****5678",
        "****0003 137****0003",
        "id139****3291x",
    ],
)
def test_what_masking_writes_is_left_as_it_is(masked):
    assert scrub(masked) == masked


@PROPERTY
@given(st.text(alphabet="0123456789" * 3 + " -._/()+*:x,", max_size=40))
def test_scrub_is_idempotent_on_any_text(text):
    masked = scrub(text)
    assert scrub(masked) == masked


async def test_the_records_page_range_is_not_masked(client):
    response = await client.get("/api/sms/records?page=0", headers=DEMO_HEADERS)
    body = await response.json()
    assert response.status == 400
    assert "****" not in body["message"]
    assert str(MAX_PAGE) in body["message"]  # "page 必须是 1-1000000 的整数", not "…是 **** 的…"


# A carrier that quotes numbers back in its own spelling, and logs what it said, as plugins do.
plugin_log = logging.getLogger("smsedge.carrier.quoting")


class QuotingOptions(Settings, frozen=True, kw_only=True):
    says: Text


class QuotingCarrier(Carrier[QuotingOptions]):
    """Refuses every number with the configured words (``plugin: "tests.test_masking:QuotingCarrier"``)."""

    max_batch = 10
    Options = QuotingOptions

    async def send(self, batch: SendBatch) -> list[Outcome]:
        plugin_log.warning("upstream refused: %s", self.options.says)
        return [
            Outcome(r.e164, False, kind=FailureKind.PERMANENT, code="BLOCKED", message=self.options.says)
            for r in batch.recipients
        ]


captured_logs = test_log_privacy.captured_logs  # logging as ``sms-edge serve`` sets it up, captured


def shows_issue_number(text: str) -> bool:
    """The number of the issue's example, in its spelling, whole, or with separators dropped."""
    return any(form in text for form in ("139.0384.3291", "0384.3291", "13903843291")) or (
        "13903843291" in re.sub(r"[^0-9]", "", text)
    )


@pytest.mark.parametrize("captured_logs", ["json", "text"], indirect=True)
async def test_a_carrier_refusal_spelling_a_number_its_own_way_is_masked_everywhere(
    make_client, captured_logs
):
    backend = {"plugin": "tests.test_masking:QuotingCarrier", "price": 0.05, "says": ISSUE_MESSAGE}
    client = await make_client(providers={"backends": {"quoting": backend}})
    body = {**SEND_BODY, "phone": "13903843291", "provider": "quoting"}
    response = await client.post("/api/sms/send", json=body, headers=DEMO_HEADERS)
    text = await response.text()
    assert response.status == 502
    assert "blocked 139****3291 (tel_139****3291)" in (await response.json())["message"]
    assert not shows_issue_number(text)

    records = await (await client.get("/api/sms/records", headers=DEMO_HEADERS)).json()
    [record] = records["data"]["records"]
    assert record["status"] == "failed"
    assert record["error"] == "BLOCKED: blocked 139****3291 (tel_139****3291)"

    logged = captured_logs.getvalue()
    assert "upstream refused: blocked 139****3291 (tel_139****3291)" in logged
    assert not shows_issue_number(logged)
