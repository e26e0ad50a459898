"""The Aliyun plugin against the documented V1/V3 vectors and a fake upstream that verifies them."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from gateway.carriers.base import FailureKind, Recipient, SendBatch
from gateway.config.model import BackendConfig
from gateway.config.reader import ConfigError, Reader
from plugins.aliyun import ERRORS, FORM, AliyunCarrier, classify
from plugins.aliyun.signing import (
    EMPTY_SHA256,
    acs3_authorization,
    acs3_headers,
    canonical_query,
    percent_encode,
    rpc_signature,
    rpc_string_to_sign,
)
from tests.fakes import Fault, refused
from tests.fakes.aliyun import ACCESS_KEY_ID, ACCESS_KEY_SECRET, AliyunUpstream, create_app

# -- vector A1 (carriers.md section 4): V1 HMAC-SHA1, computed with the official SDKs ----------------
A1_PARAMS = {
    "AccessKeyId": "testid", "Action": "SendSms", "Format": "JSON", "RegionId": "cn-hangzhou",
    "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0", "Timestamp": "2023-11-14T22:13:20Z", "Version": "2017-05-25",
    "PhoneNumbers": "13800138000,13900139000", "SignName": "阿里云 短信*测试~",
    "TemplateCode": "SMS_154950909", "TemplateParam": '{"code":"1234"}', "OutId": "out-1",
}
A1_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DSendSms%26Format%3DJSON%26OutId%3Dout-1"
    "%26PhoneNumbers%3D13800138000%252C13900139000%26RegionId%3Dcn-hangzhou%26SignName%3D"
    "%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%2520%25E7%259F%25AD%25E4%25BF%25A1%252A"
    "%25E6%25B5%258B%25E8%25AF%2595~%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D"
    "45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3D"
    "SMS_154950909%26TemplateParam%3D%257B%2522code%2522%253A%25221234%2522%257D%26Timestamp"
    "%3D2023-11-14T22%253A13%253A20Z%26Version%3D2017-05-25"
)
# -- vector A2: V3 ACS3-HMAC-SHA256 ------------------------------------------------------------------
A2_QUERY = {"PhoneNumbers": "13800138000", "SignName": "阿里云", "TemplateCode": "SMS_154950909",
            "TemplateParam": '{"code":"1234"}'}
A2_HEADERS = {
    "host": "dysmsapi.aliyuncs.com", "x-acs-action": "SendSms", "x-acs-version": "2017-05-25",
    "x-acs-date": "2023-11-14T22:13:20Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": EMPTY_SHA256,
}
A2_AUTHORIZATION = (
    "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
    "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
    "Signature=61fd54bf53c6e817fac643e87dc94cad0be9de9c58c848ac55a254c5066556ed"
)
A_TIMESTAMP = 1700000000  # 2023-11-14T22:13:20Z
PATH = "providers.backends.aliyun"


def make_carrier(
    session: aiohttp.ClientSession, endpoint: str, timeout: float = 2.0, **overrides: Any
) -> AliyunCarrier:
    """A carrier built the way the core builds it: read_options, then done()."""
    options = {
        "endpoint": endpoint, "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": ACCESS_KEY_SECRET, "sign_name": "SMS Edge", **overrides,
    }
    reader = Reader(options, PATH)
    parsed = AliyunCarrier.read_options(reader)
    reader.done()
    backend = BackendConfig(
        name="aliyun", plugin="aliyun", price_milli=45, timeout=timeout, retries=1,
        receipts=False, callback_token="", options=parsed,
    )
    return AliyunCarrier(backend, session)


def make_batch(*phones: str, params: dict[str, str] | None = None) -> SendBatch:
    return SendBatch(
        template_id="SMS_154950909",
        params={"code": "1234"} if params is None else params,
        param_order=(),
        recipients=[Recipient(phone, f"msg-{i}") for i, phone in enumerate(phones)],
    )


@pytest.fixture
def upstream() -> AliyunUpstream:
    return AliyunUpstream()


@pytest.fixture
async def server(aiohttp_server: Any, upstream: AliyunUpstream) -> TestServer:
    return await aiohttp_server(create_app(upstream))


@pytest.fixture
def carrier(session: aiohttp.ClientSession, server: TestServer) -> AliyunCarrier:
    return make_carrier(session, str(server.make_url("/")))


# -- signing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "encoded"), [
    ("a b", "a%20b"), ("*", "%2A"), ("~", "~"), ("a+b", "a%2Bb"), ("阿", "%E9%98%BF"),
    ("-_.", "-_."), ("/", "%2F"), (",", "%2C"),
])
def test_percent_encode(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


def test_a1_v1_signature() -> None:
    assert rpc_string_to_sign("GET", A1_PARAMS) == A1_STRING_TO_SIGN
    assert rpc_signature(A1_PARAMS, "GET", "testsecret") == "wTTfu29316KOdXXYedRcPRvxc3U="
    assert rpc_signature(A1_PARAMS, "POST", "testsecret") == "R6PCTGw9HO30oBjUdMgUBc4d1Mc="
    signed = {**A1_PARAMS, "Signature": "ignored"}  # Signature itself is never signed
    assert rpc_signature(signed, "GET", "testsecret") == "wTTfu29316KOdXXYedRcPRvxc3U="


def test_a2_v3_authorization() -> None:
    assert acs3_authorization(
        method="POST", path="/", query=A2_QUERY, headers=A2_HEADERS, payload_hash=EMPTY_SHA256,
        access_key_id="YourAccessKeyId", access_key_secret="YourAccessKeySecret",
    ) == A2_AUTHORIZATION
    headers = acs3_headers(
        method="POST", host="dysmsapi.aliyuncs.com", path="/", query=A2_QUERY, body=b"",
        action="SendSms", version="2017-05-25", timestamp=A_TIMESTAMP,
        nonce="3156853299f313e23d1673dc12e1703d", access_key_id="YourAccessKeyId",
        access_key_secret="YourAccessKeySecret",
    )
    assert headers == {**A2_HEADERS, "Authorization": A2_AUTHORIZATION}


async def post_signed(
    session: aiohttp.ClientSession, url: URL, query: dict[str, str], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    target = URL(f"{url}?{canonical_query(query)}", encoded=True)
    async with session.post(target, headers=headers) as response:
        return response.status, await response.json()


async def test_fake_verifies_a2_on_its_own(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    """The fake's independent V3 verifier accepts the SDK-signed request, and only that."""
    upstream = AliyunUpstream(
        access_key_id="YourAccessKeyId", access_key_secret="YourAccessKeySecret",
        clock=lambda: A_TIMESTAMP,
    )
    url = (await aiohttp_server(create_app(upstream))).make_url("/")
    headers = {**A2_HEADERS, "Authorization": A2_AUTHORIZATION}
    status, tampered = await post_signed(session, url, {**A2_QUERY, "SignName": "x"}, headers)
    assert (status, tampered["Code"]) == (400, "SignatureDoesNotMatch")
    status, data = await post_signed(session, url, A2_QUERY, headers)
    assert (status, data["Code"], data["Message"]) == (200, "OK", "OK")
    assert data["BizId"].endswith("^0") and data["RequestId"]
    status, replay = await post_signed(session, url, A2_QUERY, headers)
    assert (status, replay["Code"]) == (400, "SignatureNonceUsed")


async def test_fake_verifies_v1(aiohttp_server: Any, session: aiohttp.ClientSession) -> None:
    upstream = AliyunUpstream(access_key_id="testid", access_key_secret="testsecret",
                              clock=lambda: A_TIMESTAMP)
    url = (await aiohttp_server(create_app(upstream))).make_url("/")
    query = {**A1_PARAMS, "Signature": rpc_signature(A1_PARAMS, "POST", "testsecret")}
    status, data = await post_signed(session, url, query, {})
    assert (status, data["Code"]) == (200, "OK")
    query = {**A1_PARAMS, "Signature": rpc_signature(A1_PARAMS, "GET", "testsecret")}
    status, data = await post_signed(session, url, {**query, "SignatureNonce": "n2"}, {})
    assert (status, data["Code"]) == (400, "SignatureDoesNotMatch")


# -- sending -------------------------------------------------------------------------------------


async def test_one_number(
    carrier: AliyunCarrier, upstream: AliyunUpstream, server: TestServer
) -> None:
    [outcome] = await carrier.send(make_batch("+8613800138000"))
    assert outcome.accepted and outcome.e164 == "+8613800138000"
    assert outcome.carrier_id and outcome.carrier_id.endswith("^0")
    [received] = upstream.requests
    assert (received.method, received.path, received.body) == ("POST", "/", b"")
    assert received.query == {
        "PhoneNumbers": "13800138000", "SignName": "SMS Edge", "TemplateCode": "SMS_154950909",
        "TemplateParam": '{"code":"1234"}', "OutId": "msg-0",
    }
    assert received.headers["host"] == f"{server.host}:{server.port}"
    assert received.headers["x-acs-action"] == "SendSms"
    assert received.headers["x-acs-version"] == "2017-05-25"
    assert received.headers["x-acs-content-sha256"] == EMPTY_SHA256
    assert received.headers["Authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={ACCESS_KEY_ID},")


async def test_many_numbers_in_one_call(
    carrier: AliyunCarrier, upstream: AliyunUpstream
) -> None:
    phones = ["+8613800138000", "+8613900139000", "+85261234567"]
    params = {"name": "张三 & co", "code": "1234"}
    outcomes = await carrier.send(make_batch(*phones, params=params))
    assert [o.e164 for o in outcomes] == phones and all(o.accepted for o in outcomes)
    assert len({o.carrier_id for o in outcomes}) == 1  # one BizId per call, shared
    [received] = upstream.requests
    assert received.query["PhoneNumbers"] == "13800138000,13900139000,85261234567"
    assert orjson.loads(received.query["TemplateParam"]) == params
    assert "OutId" not in received.query  # one OutId cannot name three messages


async def test_full_batch_is_one_call(carrier: AliyunCarrier, upstream: AliyunUpstream) -> None:
    phones = [f"+86139{i:08d}" for i in range(AliyunCarrier.max_batch)]
    outcomes = await carrier.send(make_batch(*phones))
    assert len(outcomes) == len(phones) and all(o.accepted for o in outcomes)
    [received] = upstream.requests
    # ~14 KB of numbers would overflow common 8 KB URL limits: they travel in a signed form body.
    assert received.query == {} and received.headers["content-type"] == FORM
    assert "content-type" in received.headers["Authorization"]
    assert parse_qs(received.body.decode())["PhoneNumbers"] == [",".join(p[3:] for p in phones)]


async def test_no_params_sends_no_template_param(
    carrier: AliyunCarrier, upstream: AliyunUpstream
) -> None:
    await carrier.send(make_batch("+8613800138000", params={}))
    assert "TemplateParam" not in upstream.requests[0].query


@pytest.mark.parametrize(("code", "kind"), [
    ("isv.MOBILE_NUMBER_ILLEGAL", FailureKind.CALLER),
    ("isv.BUSINESS_LIMIT_CONTROL", FailureKind.RATE_LIMITED),
])
async def test_one_guilty_number_fails_alone(
    carrier: AliyunCarrier, upstream: AliyunUpstream, code: str, kind: FailureKind
) -> None:
    """Aliyun refuses the whole call; resending one by one pins the refusal on its number."""
    phones = ["+8613800138000", "+8613900139000", "+8613700137000"]
    upstream.number_codes = {phones[1]: code}
    first, guilty, last = await carrier.send(make_batch(*phones))
    assert (guilty.accepted, guilty.kind, guilty.code) == (False, kind, code)
    assert first.accepted and last.accepted and first.carrier_id != last.carrier_id
    assert len(upstream.requests) == 1 + len(phones)
    assert sorted(r.query.get("OutId", "") for r in upstream.requests) == [
        "", "msg-0", "msg-1", "msg-2",
    ]


async def test_call_wide_refusal_is_not_resent(
    carrier: AliyunCarrier, upstream: AliyunUpstream
) -> None:
    upstream.error_code = "isv.AMOUNT_NOT_ENOUGH"
    error = await refused(carrier, make_batch("+8613800138000", "+8613900139000"))
    assert (error.kind, error.code, error.message) == (
        FailureKind.PERMANENT, "isv.AMOUNT_NOT_ENOUGH", "账户余额不足",
    )
    assert len(upstream.requests) == 1


# -- whole-call refusals ---------------------------------------------------------------------------


async def test_wrong_secret_is_permanent(
    session: aiohttp.ClientSession, server: TestServer
) -> None:
    carrier = make_carrier(session, str(server.make_url("/")), access_key_secret="not-it")
    error = await refused(carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.PERMANENT, "SignatureDoesNotMatch")
    # Aliyun quotes its string to sign, numbers included: the plugin keeps only the reason.
    assert "13800138000" not in error.message and error.message.startswith("Specified signature")


async def test_unknown_access_key_is_permanent(
    session: aiohttp.ClientSession, server: TestServer
) -> None:
    carrier = make_carrier(session, str(server.make_url("/")), access_key_id="LTAIsomebodyElse")
    error = await refused(carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.PERMANENT, "InvalidAccessKeyId.NotFound")


async def test_stale_timestamp_is_permanent(
    carrier: AliyunCarrier, upstream: AliyunUpstream
) -> None:
    upstream.clock = lambda: time.time() - 901
    error = await refused(carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.PERMANENT, "InvalidTimeStamp.Expired")


@pytest.mark.parametrize(("code", "kind"), [
    ("Throttling.User", FailureKind.RETRYABLE),  # HTTP 400
    ("InternalError", FailureKind.RETRYABLE),  # HTTP 500
    ("ServiceUnavailable", FailureKind.RETRYABLE),  # HTTP 503
    ("isp.SYSTEM_ERROR", FailureKind.RETRYABLE),
    ("isv.DAY_LIMIT_CONTROL", FailureKind.RETRYABLE),
    ("isv.TEMPLATE_MISSING_PARAMETERS", FailureKind.CALLER),
    ("isv.MOBILE_NUMBER_ILLEGAL", FailureKind.CALLER),
    ("isv.BUSINESS_LIMIT_CONTROL", FailureKind.RATE_LIMITED),
    ("isv.SMS_TEMPLATE_ILLEGAL", FailureKind.PERMANENT),
    ("isv.OUT_OF_SERVICE", FailureKind.PERMANENT),
    ("isv.SOMETHING_NEW", FailureKind.PERMANENT),
])
async def test_call_error_codes(
    carrier: AliyunCarrier, upstream: AliyunUpstream, code: str, kind: FailureKind
) -> None:
    upstream.error_code = code
    error = await refused(carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (kind, code)


async def test_retry_after_header_means_retryable(
    carrier: AliyunCarrier, upstream: AliyunUpstream
) -> None:
    upstream.error_code, upstream.retry_after = "Forbidden.RAM", 2
    error = await refused(carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.RETRYABLE, "Forbidden.RAM")


@pytest.mark.parametrize(("fault", "code"), [
    (Fault.HTTP_500, "HTTP_500"),
    (Fault.SLOW, "TIMEOUT"),
    (Fault.RESET, "NETWORK_ERROR"),
    (Fault.MALFORMED_JSON, "BAD_RESPONSE"),
])
async def test_transport_faults_are_retryable_and_a_timeout_is_unknown(
    session: aiohttp.ClientSession,
    server: TestServer,
    upstream: AliyunUpstream,
    fault: Fault,
    code: str,
) -> None:
    upstream.fault, upstream.delay = fault, 2.0
    carrier = make_carrier(session, str(server.make_url("/")), timeout=0.2)
    error = await refused(carrier, make_batch("+8613800138000", "+8613900139000"))
    # A timeout leaves the outcome unknown: the core decides whether trying again is safe.
    expected = FailureKind.TIMEOUT if fault is Fault.SLOW else FailureKind.RETRYABLE
    assert (error.kind, error.code) == (expected, code)
    assert len(upstream.requests) == 1


async def test_logs_hold_no_number_or_secret(
    carrier: AliyunCarrier, upstream: AliyunUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.number_codes = {"+8613800138001": "isv.MOBILE_NUMBER_ILLEGAL"}
    with caplog.at_level(logging.DEBUG):
        await carrier.send(make_batch("+8613800138000", "+8613800138001"))
    assert "resending one by one" in caplog.text
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("plugins"))
    assert "13800138" not in ours and ACCESS_KEY_SECRET not in ours


# -- options and error table ---------------------------------------------------------------------


def read(options: dict[str, Any]) -> Any:
    return AliyunCarrier.read_options(Reader(options, PATH))


FULL = {"access_key_id": "id", "access_key_secret": "hush", "sign_name": "SMS Edge"}


@pytest.mark.parametrize("missing", [None, ""])
def test_missing_secret_names_the_key(missing: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        read({**FULL, "access_key_secret": missing})
    assert str(caught.value) == "providers.backends.aliyun.access_key_secret: required"


def test_bad_endpoint_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^providers\.backends\.aliyun\.endpoint: "):
        read({**FULL, "endpoint": "ftp://dysmsapi.aliyuncs.com"})


def test_options_defaults_and_repr() -> None:
    options = read(FULL)
    assert str(options.endpoint) == "https://dysmsapi.aliyuncs.com"
    assert "hush" not in repr(options)


def doc_table(heading: str) -> dict[str, str]:
    """``code -> kind`` from one table of docs/carriers.md, so the docs cannot drift."""
    text = (Path(__file__).parents[1] / "docs" / "carriers.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \|[^|]*\| (\w+) \|", section, flags=re.MULTILINE)
    return dict(rows)


def test_error_table_is_documented() -> None:
    assert doc_table("## Aliyun error codes") == {c: k.value for c, k in ERRORS.items()}
    assert classify("Never.Seen") is FailureKind.PERMANENT


async def test_empty_batch_calls_nobody(carrier: AliyunCarrier, upstream: AliyunUpstream) -> None:
    assert await carrier.send(make_batch()) == []
    assert upstream.requests == []
