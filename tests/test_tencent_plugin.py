"""The Tencent plugin against the documented TC3 vector and a fake upstream that verifies it."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.carriers.base import CarrierError, FailureKind, Outcome, Recipient, SendBatch
from gateway.config.model import BackendConfig
from gateway.config.reader import ConfigError, Reader
from plugins import tencent
from plugins.tencent import ERRORS, TencentCarrier, classify
from plugins.tencent.signing import (
    authorization,
    canonical_request,
    request_headers,
    sign,
    string_to_sign,
)
from tests.fakes import Fault, refused
from tests.fakes.tencent import SDK_APP_ID, SECRET_ID, SECRET_KEY, TencentUpstream, create_app

# -- vector T1 (carriers.md section 4), computed with tencentcloud-sdk-python-common ---------------
T1_ID = "AKIDEXAMPLEsecretid0000000000000000"
T1_KEY = "EXAMPLEsecretKey0000000000000000"
T1_TIMESTAMP = 1700000000
T1_HOST = "sms.tencentcloudapi.com"
T1_BODY = (
    b'{"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666", "SignName": "Acme", '
    b'"TemplateId": "1110", "TemplateParamSet": ["4370", "5"], "SessionContext": "msg-1"}'
)
T1_BODY_SHA256 = "3e920144f0e1c866d8db4de66b38e96a4e6a5e8e4882cab91885bd82296ce6f2"
T1_STRING_TO_SIGN = (
    "TC3-HMAC-SHA256\n1700000000\n2023-11-14/sms/tc3_request\n"
    "9678baeafe3dbed6f16867dd50ad7649e9755b819655c0d64d4e2b2195d4fe13"
)
T1_SIGNATURE = "44072775ba1ac2b3f1b69930864cb0cbcccb206933afeea7fdeb981d618c74e6"
T1_AUTHORIZATION = (
    f"TC3-HMAC-SHA256 Credential={T1_ID}/2023-11-14/sms/tc3_request, "
    f"SignedHeaders=content-type;host, Signature={T1_SIGNATURE}"
)
PATH = "providers.backends.tencent"


def make_carrier(
    session: aiohttp.ClientSession, endpoint: str, timeout: float = 2.0, **overrides: Any
) -> TencentCarrier:
    """A carrier built the way the core builds it: read_options, then done()."""
    options = {
        "endpoint": endpoint, "region": "ap-guangzhou", "secret_id": SECRET_ID,
        "secret_key": SECRET_KEY, "sdk_app_id": SDK_APP_ID, "sign_name": "SMS Edge", **overrides,
    }
    reader = Reader(options, PATH)
    parsed = TencentCarrier.read_options(reader)
    reader.done()
    backend = BackendConfig(
        name="tencent", plugin="tencent", price_milli=45, timeout=timeout, retries=1,
        receipts=False, callback_token="", options=parsed,
    )
    return TencentCarrier(backend, session)


def make_batch(*phones: str, params: dict[str, str] | None = None) -> SendBatch:
    return SendBatch(
        template_id="1110",
        params={"minutes": "5", "code": "4370"} if params is None else params,
        param_order=("code", "minutes"),
        recipients=[Recipient(phone, f"msg-{i}") for i, phone in enumerate(phones)],
    )


def mainland(count: int) -> list[str]:
    return [f"+86138{i:08d}" for i in range(count)]


@pytest.fixture
def upstream() -> TencentUpstream:
    return TencentUpstream()


@pytest.fixture
async def server(aiohttp_server: Any, upstream: TencentUpstream) -> TestServer:
    return await aiohttp_server(create_app(upstream))


@pytest.fixture
def carrier(session: aiohttp.ClientSession, server: TestServer) -> TencentCarrier:
    return make_carrier(session, str(server.make_url("/")))


# -- signing -------------------------------------------------------------------------------------


def test_t1_intermediate_values() -> None:
    canonical = canonical_request(
        method="POST", uri="/", query="", content_type="application/json", host=T1_HOST,
        body=T1_BODY,
    )
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json\nhost:sms.tencentcloudapi.com\n\n"
        f"content-type;host\n{T1_BODY_SHA256}"
    )
    assert string_to_sign(T1_TIMESTAMP, "sms", canonical) == T1_STRING_TO_SIGN
    assert sign(T1_KEY, "2023-11-14", "sms", T1_STRING_TO_SIGN) == T1_SIGNATURE


def test_t1_authorization_and_headers() -> None:
    assert authorization(
        secret_id=T1_ID, secret_key=T1_KEY, timestamp=T1_TIMESTAMP, host=T1_HOST, body=T1_BODY
    ) == T1_AUTHORIZATION
    headers = request_headers(
        action="SendSms", version="2021-01-11", region="ap-guangzhou", secret_id=T1_ID,
        secret_key=T1_KEY, host=T1_HOST, body=T1_BODY, timestamp=T1_TIMESTAMP,
    )
    assert headers == {
        "Content-Type": "application/json", "Host": T1_HOST, "X-TC-Action": "SendSms",
        "X-TC-Version": "2021-01-11", "X-TC-Timestamp": "1700000000",
        "X-TC-Region": "ap-guangzhou", "Authorization": T1_AUTHORIZATION,
    }


@pytest.mark.parametrize(("body", "answer"), [
    (T1_BODY, "Ok"),
    (T1_BODY.replace(b"4370", b"4371"), "AuthFailure.SignatureFailure"),
])
async def test_fake_verifies_t1_on_its_own(
    aiohttp_server: Any, session: aiohttp.ClientSession, body: bytes, answer: str
) -> None:
    """The fake's independent verifier accepts the SDK-signed request, and only that."""
    upstream = TencentUpstream(secret_id=T1_ID, secret_key=T1_KEY, clock=lambda: T1_TIMESTAMP)
    server = await aiohttp_server(create_app(upstream))
    headers = request_headers(
        action="SendSms", version="2021-01-11", region="ap-guangzhou", secret_id=T1_ID,
        secret_key=T1_KEY, host=T1_HOST, body=T1_BODY, timestamp=T1_TIMESTAMP,
    )
    async with session.post(server.make_url("/"), data=body, headers=headers) as response:
        data = await response.json()
    got = data["Response"].get("Error", {}).get("Code") or data["Response"]["SendStatusSet"][0]["Code"]
    assert got == answer


# -- sending -------------------------------------------------------------------------------------


async def test_one_number(
    carrier: TencentCarrier, upstream: TencentUpstream, server: TestServer
) -> None:
    [outcome] = await carrier.send(make_batch("+8613800138000"))
    assert outcome.accepted and outcome.e164 == "+8613800138000"
    assert outcome.carrier_id and outcome.carrier_id.startswith("2433:")
    [received] = upstream.requests
    assert received.method == "POST" and received.path == "/"
    assert received.headers["Host"] == f"{server.host}:{server.port}"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-TC-Action"] == "SendSms"
    assert received.headers["X-TC-Version"] == "2021-01-11"
    assert received.headers["X-TC-Region"] == "ap-guangzhou"
    assert received.json() == {
        "PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": SDK_APP_ID, "TemplateId": "1110",
        "TemplateParamSet": ["4370", "5"], "SignName": "SMS Edge", "SessionContext": "msg-0",
    }


async def test_full_batch_is_one_call(carrier: TencentCarrier, upstream: TencentUpstream) -> None:
    phones = mainland(TencentCarrier.max_batch)
    outcomes = await carrier.send(make_batch(*phones))
    assert [o.e164 for o in outcomes] == phones
    assert all(o.accepted for o in outcomes)
    assert len({o.carrier_id for o in outcomes}) == len(phones)
    [received] = upstream.requests
    assert received.json()["PhoneNumberSet"] == phones
    assert "SessionContext" not in received.json()  # one context cannot name 200 messages


async def test_no_params_sends_an_empty_list(
    carrier: TencentCarrier, upstream: TencentUpstream
) -> None:
    await carrier.send(make_batch("+8613800138000", params={}))
    assert upstream.requests[0].json()["TemplateParamSet"] == []


async def test_mainland_and_international_go_in_separate_calls(
    carrier: TencentCarrier, upstream: TencentUpstream
) -> None:
    phones = ["+85261234567", "+8613800138000", "+14155550100", "+8613900139000"]
    outcomes = await carrier.send(make_batch(*phones))
    assert [o.e164 for o in outcomes] == phones
    assert all(o.accepted for o in outcomes)
    sets = sorted((r.json()["PhoneNumberSet"], "SignName" in r.json()) for r in upstream.requests)
    assert sets == [
        (["+85261234567", "+14155550100"], False),
        (["+8613800138000", "+8613900139000"], True),
    ]


async def test_per_number_failures(carrier: TencentCarrier, upstream: TencentUpstream) -> None:
    phones = mainland(4)
    upstream.number_codes = {
        phones[1]: "InvalidParameterValue.IncorrectPhoneNumber",
        phones[2]: "LimitExceeded.PhoneNumberThirtySecondLimit",
    }
    first, bad, limited, last = await carrier.send(make_batch(*phones))
    assert first.accepted and last.accepted
    assert (bad.accepted, bad.kind, bad.code, bad.carrier_id) == (
        False, FailureKind.CALLER, "InvalidParameterValue.IncorrectPhoneNumber", None,
    )
    assert bad.message == "incorrect number format"
    assert (limited.accepted, limited.kind) == (False, FailureKind.RATE_LIMITED)


def test_statuses_are_matched_by_number_not_order() -> None:
    recipients = [Recipient("+8613800000001", "a"), Recipient("+8613800000002", "b")]
    statuses = [
        {"PhoneNumber": "+8613800000002", "Code": "Ok", "SerialNo": "s2"},
        {"PhoneNumber": "+8613800000009", "Code": "Ok", "SerialNo": "s9"},
    ]
    first, second = tencent._match(recipients, statuses)
    assert (second.accepted, second.carrier_id) == (True, "s2")
    assert (first.accepted, first.kind, first.code) == (
        False, FailureKind.PERMANENT, "MissingSendStatus",
    )


def test_a_failed_call_fails_only_its_part() -> None:
    batch = make_batch("+8613800138000", "+85261234567")
    error = CarrierError(FailureKind.RETRYABLE, "InternalError", "boom")
    ok = Outcome("+8613800138000", True, carrier_id="s1")
    routes = tencent._routes(batch.recipients)
    parts = [[batch.recipients[i] for i in route] for route in routes]
    merged = tencent._merge(batch, routes, parts, [[ok], error])
    assert merged[0] == ok
    assert (merged[1].e164, merged[1].accepted, merged[1].code) == (
        "+85261234567", False, "InternalError",
    )
    with pytest.raises(CarrierError):
        tencent._merge(batch, routes, parts, [error, error])


# -- whole-call refusals ---------------------------------------------------------------------------


async def test_wrong_secret_is_permanent(
    session: aiohttp.ClientSession, server: TestServer
) -> None:
    carrier = make_carrier(session, str(server.make_url("/")), secret_key="not-the-secret")
    error = await refused(carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.PERMANENT, "AuthFailure.SignatureFailure")
    assert error.outcomes(make_batch("+8613800138000"))[0].kind is FailureKind.PERMANENT


async def test_unknown_secret_id_is_permanent(
    session: aiohttp.ClientSession, server: TestServer
) -> None:
    carrier = make_carrier(session, str(server.make_url("/")), secret_id="AKIDsomebodyElse")
    error = await refused(carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.PERMANENT, "AuthFailure.SecretIdNotFound")


async def test_stale_timestamp_is_permanent(
    carrier: TencentCarrier, upstream: TencentUpstream
) -> None:
    upstream.clock = lambda: time.time() + 301
    error = await refused(carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.PERMANENT, "AuthFailure.SignatureExpire")


@pytest.mark.parametrize(("code", "kind"), [
    ("RequestLimitExceeded", FailureKind.RETRYABLE),
    ("InternalError.Timeout", FailureKind.RETRYABLE),
    ("LimitExceeded.AppDailyLimit", FailureKind.RETRYABLE),
    ("FailedOperation.InsufficientBalanceInSmsPackage", FailureKind.PERMANENT),
    ("FailedOperation.TemplateIncorrectOrUnapproved", FailureKind.PERMANENT),
    ("FailedOperation.SignatureIncorrectOrUnapproved", FailureKind.PERMANENT),
    ("InvalidParameterValue.TemplateParameterFormatError", FailureKind.CALLER),
    ("LimitExceeded.PhoneNumberDailyLimit", FailureKind.RATE_LIMITED),
    ("FailedOperation.SomethingNew", FailureKind.PERMANENT),
])
async def test_call_error_codes(
    carrier: TencentCarrier, upstream: TencentUpstream, code: str, kind: FailureKind
) -> None:
    upstream.error_code = code
    error = await refused(carrier, make_batch(*mainland(3)))
    assert (error.kind, error.code) == (kind, code)
    assert error.message


@pytest.mark.parametrize(("fault", "code"), [
    (Fault.HTTP_500, "HTTP_500"),
    (Fault.SLOW, "TIMEOUT"),
    (Fault.RESET, "NETWORK_ERROR"),
    (Fault.MALFORMED_JSON, "BAD_RESPONSE"),
])
async def test_transport_faults_are_retryable_and_a_timeout_is_unknown(
    session: aiohttp.ClientSession,
    server: TestServer,
    upstream: TencentUpstream,
    fault: Fault,
    code: str,
) -> None:
    upstream.fault, upstream.delay = fault, 2.0
    carrier = make_carrier(session, str(server.make_url("/")), timeout=0.2)
    error = await refused(carrier, make_batch("+8613800138000"))
    # A timeout leaves the outcome unknown: the core decides whether trying again is safe.
    expected = FailureKind.TIMEOUT if fault is Fault.SLOW else FailureKind.RETRYABLE
    assert (error.kind, error.code) == (expected, code)


async def test_connection_refused_is_retryable(
    session: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    carrier = make_carrier(session, f"http://127.0.0.1:{unused_tcp_port}/")
    error = await refused(carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.RETRYABLE, "NETWORK_ERROR")


async def test_logs_hold_no_number_or_secret(
    carrier: TencentCarrier, upstream: TencentUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.number_codes = {"+8613800138001": "InvalidParameterValue.IncorrectPhoneNumber"}
    with caplog.at_level(logging.DEBUG):
        await carrier.send(make_batch("+8613800138000", "+8613800138001"))
    assert "tencent SendSms: 2 numbers" in caplog.text
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("plugins"))
    assert "13800138" not in ours and SECRET_KEY not in ours


# -- options and error table ---------------------------------------------------------------------


def read(options: dict[str, Any]) -> Any:
    return TencentCarrier.read_options(Reader(options, PATH))


FULL = {"endpoint": "https://sms.tencentcloudapi.com", "secret_id": "id", "secret_key": "key",
        "sdk_app_id": 1400000000, "sign_name": "SMS Edge"}


@pytest.mark.parametrize("missing", [None, ""])
def test_missing_secret_names_the_key(missing: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        read({**FULL, "secret_key": missing})
    assert str(caught.value) == "providers.backends.tencent.secret_key: required"


def test_bad_endpoint_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^providers\.backends\.tencent\.endpoint: "):
        read({**FULL, "endpoint": "sms.tencentcloudapi.com"})


def test_options_defaults_and_repr() -> None:
    options = read({k: v for k, v in FULL.items() if k != "endpoint"})
    assert str(options.endpoint) == "https://sms.tencentcloudapi.com"
    assert options.region == "ap-guangzhou" and options.sdk_app_id == "1400000000"
    assert "key" not in repr(options).replace("secret_key", "")


def doc_table(heading: str) -> dict[str, str]:
    """``code -> kind`` from one table of docs/carriers.md, so the docs cannot drift."""
    text = (Path(__file__).parents[1] / "docs" / "carriers.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \|[^|]*\| (\w+) \|", section, flags=re.MULTILINE)
    return dict(rows)


def test_error_table_is_documented() -> None:
    assert doc_table("## Tencent error codes") == {c: k.value for c, k in ERRORS.items()}
    assert classify("Never.Seen") is FailureKind.PERMANENT


async def test_empty_batch_calls_nobody(carrier: TencentCarrier, upstream: TencentUpstream) -> None:
    assert await carrier.send(make_batch()) == []
    assert upstream.requests == []
