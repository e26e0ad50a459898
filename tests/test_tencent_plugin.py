"""The Tencent plugin's own protocol: the documented TC3 vector, the request it puts on the wire, and
how it splits a batch and reads SendStatusSet. What every carrier must do is in
tests/test_carrier_contract.py, run for Tencent against the same fake.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gateway.carriers.base import CarrierError, FailureKind, Outcome, Recipient, SendBatch
from plugins import tencent
from plugins.tencent import TencentCarrier
from plugins.tencent.signing import authorization, canonical_request, request_headers, sign, string_to_sign
from tests.fakes import refused
from tests.fakes.cases import TENCENT, Rig, mainland, make_batch
from tests.fakes.tencent import SDK_APP_ID, TencentUpstream, create_app
from tests.fakes.vectors import (
    T1_AUTHORIZATION,
    T1_BODY,
    T1_BODY_SHA256,
    T1_HOST,
    T1_ID,
    T1_KEY,
    T1_SIGNATURE,
    T1_STRING_TO_SIGN,
    T1_TIMESTAMP,
)


def batch(*phones: str, params: dict[str, str] | None = None) -> SendBatch:
    params = {"minutes": "5", "code": "4370"} if params is None else params
    return make_batch(*phones, template_id="1110", params=params, param_order=("code", "minutes"))


def t1_headers(body: bytes = T1_BODY, timestamp: int = T1_TIMESTAMP) -> dict[str, str]:
    """The headers our signer puts on a SendSms signed with T1's credentials (region ap-guangzhou)."""
    return request_headers(
        action="SendSms",
        version="2021-01-11",
        region="ap-guangzhou",
        secret_id=T1_ID,
        secret_key=T1_KEY,
        host=T1_HOST,
        body=body,
        timestamp=timestamp,
    )


@pytest.fixture
async def rig(aiohttp_server: Any, session: aiohttp.ClientSession) -> Rig:
    return await Rig.start(TENCENT, aiohttp_server, session)


# -- signing -------------------------------------------------------------------------------------


def test_t1_intermediate_values() -> None:
    canonical = canonical_request(
        method="POST", uri="/", query="", content_type="application/json", host=T1_HOST, body=T1_BODY
    )
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json\nhost:sms.tencentcloudapi.com\n\n"
        f"content-type;host\n{T1_BODY_SHA256}"
    )
    assert string_to_sign(T1_TIMESTAMP, "sms", canonical) == T1_STRING_TO_SIGN
    assert sign(T1_KEY, "2023-11-14", "sms", T1_STRING_TO_SIGN) == T1_SIGNATURE


def test_t1_authorization_and_headers() -> None:
    assert (
        authorization(secret_id=T1_ID, secret_key=T1_KEY, timestamp=T1_TIMESTAMP, host=T1_HOST, body=T1_BODY)
        == T1_AUTHORIZATION
    )
    assert t1_headers() == {
        "Content-Type": "application/json",
        "Host": T1_HOST,
        "X-TC-Action": "SendSms",
        "X-TC-Version": "2021-01-11",
        "X-TC-Timestamp": "1700000000",
        "X-TC-Region": "ap-guangzhou",
        "Authorization": T1_AUTHORIZATION,
    }


@pytest.mark.parametrize(
    ("body", "answer"), [(T1_BODY, "Ok"), (T1_BODY.replace(b"4370", b"4371"), "AuthFailure.SignatureFailure")]
)
async def test_fake_verifies_t1_on_its_own(
    aiohttp_server: Any, session: aiohttp.ClientSession, body: bytes, answer: str
) -> None:
    """The fake's independent verifier accepts the SDK-signed request, and only that."""
    upstream = TencentUpstream(secret_id=T1_ID, secret_key=T1_KEY, clock=lambda: T1_TIMESTAMP)
    server = await aiohttp_server(create_app(upstream))
    headers = t1_headers()
    async with session.post(server.make_url("/"), data=body, headers=headers) as response:
        data = await response.json()
    got = data["Response"].get("Error", {}).get("Code") or data["Response"]["SendStatusSet"][0]["Code"]
    assert got == answer


# -- what goes on the wire -----------------------------------------------------------------------


async def test_the_request_for_one_number(rig: Rig) -> None:
    """A JSON body with the SessionContext and the SDK's headers; the SerialNo is the carrier id."""
    [outcome] = await rig.carrier.send(batch("+8613800138000"))
    [received] = rig.upstream.requests
    assert received.json() == {
        "PhoneNumberSet": ["+8613800138000"],
        "SmsSdkAppId": SDK_APP_ID,
        "TemplateId": "1110",
        "TemplateParamSet": ["4370", "5"],
        "SignName": "SMS Edge",
        "SessionContext": "msg-0",
    }
    assert rig.server is not None
    assert (received.method, received.path) == ("POST", "/")
    assert {
        name: received.headers[name]
        for name in ("Host", "Content-Type", "X-TC-Action", "X-TC-Version", "X-TC-Region")
    } == {
        "Host": f"{rig.server.host}:{rig.server.port}",
        "Content-Type": "application/json",
        "X-TC-Action": "SendSms",
        "X-TC-Version": "2021-01-11",
        "X-TC-Region": "ap-guangzhou",
    }
    assert outcome.carrier_id and outcome.carrier_id.startswith("2433:")


async def test_a_full_batch_has_a_serial_per_number_and_no_session_context(rig: Rig) -> None:
    phones = mainland(TencentCarrier.max_batch)
    outcomes = await rig.carrier.send(batch(*phones))
    assert len({o.carrier_id for o in outcomes}) == len(phones)
    [received] = rig.upstream.requests
    assert received.json()["PhoneNumberSet"] == phones
    assert "SessionContext" not in received.json()  # one context cannot name 200 messages


async def test_no_params_sends_an_empty_list(rig: Rig) -> None:
    await rig.carrier.send(batch("+8613800138000", params={}))
    assert rig.upstream.requests[0].json()["TemplateParamSet"] == []


async def test_mainland_and_international_go_in_separate_calls(rig: Rig) -> None:
    phones = ["+85261234567", "+8613800138000", "+14155550100", "+8613900139000"]
    outcomes = await rig.carrier.send(batch(*phones))
    assert [o.e164 for o in outcomes] == phones
    assert all(o.accepted for o in outcomes)
    sets = sorted((r.json()["PhoneNumberSet"], "SignName" in r.json()) for r in rig.upstream.requests)
    assert sets == [(["+85261234567", "+14155550100"], False), (["+8613800138000", "+8613900139000"], True)]


# -- reading SendStatusSet -------------------------------------------------------------------------


async def test_per_number_failures(rig: Rig) -> None:
    phones = mainland(4)
    rig.upstream.number_codes = {
        phones[1]: "InvalidParameterValue.IncorrectPhoneNumber",
        phones[2]: "LimitExceeded.PhoneNumberThirtySecondLimit",
    }
    first, bad, limited, last = await rig.carrier.send(batch(*phones))
    assert first.accepted and last.accepted
    assert (bad.accepted, bad.kind, bad.code, bad.carrier_id) == (
        False,
        FailureKind.CALLER,
        "InvalidParameterValue.IncorrectPhoneNumber",
        None,
    )
    assert bad.message == "incorrect number format"
    assert (limited.accepted, limited.kind) == (False, FailureKind.RATE_LIMITED)


async def test_a_call_error_fails_every_number_of_the_call(rig: Rig) -> None:
    rig.upstream.error_code = "RequestLimitExceeded"
    phones = mainland(3)
    error = await refused(rig.carrier, batch(*phones))
    assert (error.kind, error.code) == (FailureKind.RETRYABLE, "RequestLimitExceeded")
    assert len(rig.upstream.requests) == 1
    assert [(o.e164, o.kind) for o in error.outcomes(batch(*phones))] == [
        (phone, FailureKind.RETRYABLE) for phone in phones
    ]


def test_statuses_are_matched_by_number_not_order() -> None:
    recipients = [Recipient("+8613800000001", "a"), Recipient("+8613800000002", "b")]
    statuses = [
        {"PhoneNumber": "+8613800000002", "Code": "Ok", "SerialNo": "s2"},
        {"PhoneNumber": "+8613800000009", "Code": "Ok", "SerialNo": "s9"},
    ]
    first, second = tencent._match(recipients, statuses)
    assert (second.accepted, second.carrier_id) == (True, "s2")
    assert (first.accepted, first.kind, first.code) == (False, FailureKind.PERMANENT, "MissingSendStatus")


def test_a_failed_call_fails_only_its_part() -> None:
    both = batch("+8613800138000", "+85261234567")
    error = CarrierError(FailureKind.RETRYABLE, "InternalError", "boom")
    ok = Outcome("+8613800138000", True, carrier_id="s1")
    regions = tencent._by_region(both.recipients)
    parts = [[both.recipients[i] for i in region] for region in regions]
    merged = tencent._merge(both, regions, parts, [[ok], error])
    assert merged[0] == ok
    assert (merged[1].e164, merged[1].accepted, merged[1].code) == ("+85261234567", False, "InternalError")
    with pytest.raises(CarrierError):
        tencent._merge(both, regions, parts, [error, error])


# -- options ---------------------------------------------------------------------------------------


def test_options_defaults() -> None:
    options = TENCENT.read_options(
        {"secret_id": "id", "secret_key": "key", "sdk_app_id": 1400000000, "sign_name": "SMS Edge"}
    )
    assert options.region == "ap-guangzhou"
    assert options.sdk_app_id == "1400000000"  # a number written bare in YAML is its digits


# -- Fee: the segments Tencent billed --------------------------------------------------------------


async def test_the_fee_is_the_billed_segments(rig: Rig) -> None:
    phones = mainland(3)
    [first] = await rig.carrier.send(batch(phones[0]))
    assert first.segments == 1  # the fake bills one segment unless told otherwise
    rig.upstream.fee, rig.upstream.fees = 3, {phones[2]: 2}
    second, third = await rig.carrier.send(batch(*phones[1:]))
    assert (second.segments, third.segments) == (3, 2)


@pytest.mark.parametrize("fee", [None, "3", 0, -1, 2.5, True, [3]], ids=repr)
async def test_a_missing_or_bad_fee_says_nothing(rig: Rig, fee: Any) -> None:
    """``None`` leaves the field out; whatever it is, the number was accepted all the same."""
    rig.upstream.fee = fee
    [outcome] = await rig.carrier.send(batch("+8613800138000"))
    assert (outcome.accepted, outcome.segments) == (True, None)
    assert outcome.carrier_id and outcome.carrier_id.startswith("2433:")


def test_a_refused_number_has_no_segments() -> None:
    statuses = [{"PhoneNumber": "+8613800000001", "Code": "LimitExceeded.PhoneNumberDailyLimit", "Fee": 0}]
    [outcome] = tencent._match([Recipient("+8613800000001", "a")], statuses)
    assert (outcome.accepted, outcome.segments) == (False, None)
