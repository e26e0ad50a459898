"""The Aliyun plugin's own protocol: the documented V3 vector, the request it puts on the wire,
the form body of a long call, resending a call one number at a time, and Aliyun's HTTP statuses.
What every carrier must do is in tests/test_carrier_contract.py, run for Aliyun against the same fake.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import aiohttp
import orjson
import pytest
from yarl import URL

from gateway.carriers.base import FailureKind, Receipt, SendBatch
from plugins.aliyun import FORM, AliyunCarrier
from plugins.aliyun.signing import (
    EMPTY_SHA256,
    acs3_authorization,
    acs3_headers,
    canonical_query,
    percent_encode,
)
from tests.fakes import Report, refused, vectors
from tests.fakes.aliyun import ACCESS_KEY_ID, AliyunUpstream, create_app, sms_reports
from tests.fakes.cases import ALIYUN, Rig, make_batch


def batch(*phones: str, params: dict[str, str] | None = None) -> SendBatch:
    return make_batch(*phones, template_id="SMS_154950909", params=params)


@pytest.fixture
async def rig(aiohttp_server: Any, session: aiohttp.ClientSession) -> Rig:
    return await Rig.start(ALIYUN, aiohttp_server, session)


# -- signing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("~", "~"),
        ("a+b", "a%2Bb"),
        ("阿", "%E9%98%BF"),
        ("-_.", "-_."),
        ("/", "%2F"),
        (",", "%2C"),
    ],
)
def test_percent_encode(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


def test_a2_v3_authorization() -> None:
    assert (
        acs3_authorization(
            method="POST",
            path="/",
            query=vectors.A2_QUERY,
            headers=vectors.A2_HEADERS,
            payload_hash=EMPTY_SHA256,
            access_key_id=vectors.A2_ID,
            access_key_secret=vectors.A2_SECRET,
        )
        == vectors.A2_AUTHORIZATION
    )
    headers = acs3_headers(
        method="POST",
        host="dysmsapi.aliyuncs.com",
        path="/",
        query=vectors.A2_QUERY,
        body=b"",
        action="SendSms",
        version="2017-05-25",
        timestamp=vectors.A_TIMESTAMP,
        nonce="3156853299f313e23d1673dc12e1703d",
        access_key_id=vectors.A2_ID,
        access_key_secret=vectors.A2_SECRET,
    )
    assert headers == {**vectors.A2_HEADERS, "Authorization": vectors.A2_AUTHORIZATION}


async def post_signed(
    session: aiohttp.ClientSession, url: URL, query: dict[str, str], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    target = URL(f"{url}?{canonical_query(query)}", encoded=True)
    async with session.post(target, headers=headers) as response:
        return response.status, await response.json()


async def test_fake_verifies_a2_on_its_own(aiohttp_server: Any, session: aiohttp.ClientSession) -> None:
    """The fake's independent V3 verifier accepts the SDK-signed request, and only that."""
    upstream = AliyunUpstream(
        access_key_id=vectors.A2_ID, access_key_secret=vectors.A2_SECRET, clock=lambda: vectors.A_TIMESTAMP
    )
    url = (await aiohttp_server(create_app(upstream))).make_url("/")
    headers = {**vectors.A2_HEADERS, "Authorization": vectors.A2_AUTHORIZATION}
    status, tampered = await post_signed(session, url, {**vectors.A2_QUERY, "SignName": "x"}, headers)
    assert (status, tampered["Code"]) == (400, "SignatureDoesNotMatch")
    status, data = await post_signed(session, url, vectors.A2_QUERY, headers)
    assert (status, data["Code"], data["Message"]) == (200, "OK", "OK")
    assert data["BizId"].endswith("^0") and data["RequestId"]
    status, replay = await post_signed(session, url, vectors.A2_QUERY, headers)
    assert (status, replay["Code"]) == (400, "SignatureNonceUsed")


# -- what goes on the wire -----------------------------------------------------------------------


async def test_the_request_for_one_number(rig: Rig) -> None:
    """Parameters in the signed query with an empty body, an OutId; the BizId is the carrier id."""
    [outcome] = await rig.carrier.send(batch("+8613800138000"))
    assert outcome.carrier_id and outcome.carrier_id.endswith("^0")
    [received] = rig.upstream.requests
    assert (received.method, received.path, received.body) == ("POST", "/", b"")
    assert rig.server is not None
    assert received.query == {
        "PhoneNumbers": "13800138000",
        "SignName": "SMS Edge",
        "TemplateCode": "SMS_154950909",
        "TemplateParam": '{"code":"1234"}',
        "OutId": "msg-0",
    }
    assert received.headers["host"] == f"{rig.server.host}:{rig.server.port}"
    assert received.headers["x-acs-action"] == "SendSms"
    assert received.headers["x-acs-version"] == "2017-05-25"
    assert received.headers["x-acs-content-sha256"] == EMPTY_SHA256
    assert received.headers["Authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={ACCESS_KEY_ID},")


async def test_many_numbers_in_one_call(rig: Rig) -> None:
    phones = ["+8613800138000", "+8613900139000", "+85261234567"]
    params = {"name": "张三 & co", "code": "1234"}
    outcomes = await rig.carrier.send(batch(*phones, params=params))
    assert [o.e164 for o in outcomes] == phones and all(o.accepted for o in outcomes)
    assert len({o.carrier_id for o in outcomes}) == 1  # one BizId per call, shared
    [received] = rig.upstream.requests
    assert received.query["PhoneNumbers"] == "13800138000,13900139000,85261234567"
    assert orjson.loads(received.query["TemplateParam"]) == params
    assert "OutId" not in received.query  # one OutId cannot name three messages


async def test_a_full_batch_travels_in_a_signed_form_body(rig: Rig) -> None:
    phones = [f"+86139{i:08d}" for i in range(AliyunCarrier.max_batch)]
    await rig.carrier.send(batch(*phones))
    [received] = rig.upstream.requests
    # ~14 KB of numbers would overflow common 8 KB URL limits: they travel in a signed form body.
    assert received.query == {} and received.headers["content-type"] == FORM
    assert "content-type" in received.headers["Authorization"]
    assert parse_qs(received.body.decode())["PhoneNumbers"] == [",".join(p[3:] for p in phones)]


async def test_no_params_sends_no_template_param(rig: Rig) -> None:
    await rig.carrier.send(batch("+8613800138000", params={}))
    assert "TemplateParam" not in rig.upstream.requests[0].query


# -- refusals of a whole call ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("isv.MOBILE_NUMBER_ILLEGAL", FailureKind.CALLER),
        ("isv.BUSINESS_LIMIT_CONTROL", FailureKind.RATE_LIMITED),
    ],
)
async def test_one_guilty_number_fails_alone(rig: Rig, code: str, kind: FailureKind) -> None:
    """Aliyun refuses the whole call; resending one by one pins the refusal on its number."""
    phones = ["+8613800138000", "+8613900139000", "+8613700137000"]
    rig.upstream.number_codes = {phones[1]: code}
    first, guilty, last = await rig.carrier.send(batch(*phones))
    assert (guilty.accepted, guilty.kind, guilty.code) == (False, kind, code)
    assert first.accepted and last.accepted and first.carrier_id != last.carrier_id
    assert len(rig.upstream.requests) == 1 + len(phones)
    assert sorted(r.query.get("OutId", "") for r in rig.upstream.requests) == ["", "msg-0", "msg-1", "msg-2"]


async def test_call_wide_refusal_is_not_resent(rig: Rig) -> None:
    rig.upstream.error_code = "isv.AMOUNT_NOT_ENOUGH"
    error = await refused(rig.carrier, batch("+8613800138000", "+8613900139000"))
    assert (error.kind, error.code, error.message) == (
        FailureKind.PERMANENT,
        "isv.AMOUNT_NOT_ENOUGH",
        "账户余额不足",
    )
    assert len(rig.upstream.requests) == 1


async def test_a_signature_mismatch_keeps_the_reason_not_the_numbers(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    rig = await Rig.start(ALIYUN, aiohttp_server, session, access_key_secret="not-it")
    error = await refused(rig.carrier, batch("+8613800138000"))
    assert error.code == "SignatureDoesNotMatch"
    # Aliyun quotes its string to sign, numbers included: the plugin keeps only the reason.
    assert "13800138000" not in error.message and error.message.startswith("Specified signature")


async def test_retry_after_header_means_retryable(rig: Rig) -> None:
    rig.upstream.error_code, rig.upstream.retry_after = "Forbidden.RAM", 2
    error = await refused(rig.carrier, batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.RETRYABLE, "Forbidden.RAM")


# -- sms_size: the segments Aliyun billed, in its SmsReport push -----------------------------------


async def pushed(rig: Rig, *phones: str) -> list[Receipt]:
    """Send to ``phones`` through the fake, let every message be delivered, read the push it makes."""
    await rig.carrier.send(batch(*phones))
    rig.upstream.default_report = Report(delivered=True)
    return rig.carrier.parse_receipts(orjson.dumps(sms_reports(rig.upstream)))


async def test_sms_size_is_the_billed_segments(rig: Rig) -> None:
    rig.upstream.sms_sizes = {"+8613900139000": "3", "+85261234567": 2}  # "1" for the others
    receipts = await pushed(rig, "+8613800138000", "+8613900139000", "+85261234567")
    assert [(r.e164, r.delivered, r.segments) for r in receipts] == [
        ("+8613800138000", True, 1),
        ("+8613900139000", True, 3),
        ("+85261234567", True, 2),
    ]


@pytest.mark.parametrize("size", [None, "", "x", "0", "-1", " ", "1.5", 2.5, True, 0, -2], ids=repr)
async def test_a_missing_or_bad_sms_size_is_not_a_malformed_push(rig: Rig, size: Any) -> None:
    rig.upstream.sms_size = size  # None leaves the field out
    [receipt] = await pushed(rig, "+8613800138000")
    assert (receipt.delivered, receipt.code, receipt.segments) == (True, "DELIVERED", None)
