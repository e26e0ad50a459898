"""Tencent and Aliyun end to end: the gateway's HTTP API in front, signature-checking fakes behind.

Each failure class is followed to every place it shows: the status and envelope, the record, the
balance and the metrics. Failover, the timeout rule and the circuit breaker are driven by switching
the fakes' faults.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.keys import STORE
from gateway.store.records import RecordQuery
from tests.conftest import add_account
from tests.fakes import Fault, backend_config
from tests.fakes import aliyun as fake_aliyun
from tests.fakes import tencent as fake_tencent

PHONE = "13800138000"
BODY = {"phone": PHONE, "template_id": "123456", "params": {"code": "1234", "time": "5"}}


@pytest.fixture
async def upstreams(aiohttp_server) -> dict[str, Any]:
    tencent = fake_tencent.TencentUpstream()
    aliyun = fake_aliyun.AliyunUpstream()
    return {
        "tencent": tencent,
        "aliyun": aliyun,
        "tencent_url": str((await aiohttp_server(fake_tencent.create_app(tencent))).make_url("/")),
        "aliyun_url": str((await aiohttp_server(fake_aliyun.create_app(aliyun))).make_url("/")),
    }


def carriers(up: dict[str, Any], failover: list[str] | None = None, **backends: dict) -> dict:
    tencent = backend_config(
        "tencent", up["tencent_url"], fake_tencent.CREDENTIALS, price=0.045, timeout=2, retries=1
    )
    aliyun = backend_config(
        "aliyun", up["aliyun_url"], fake_aliyun.CREDENTIALS, price=0.06, timeout=2, retries=1
    )
    return {
        "providers": {
            "default": "tencent",
            "failover": failover or [],
            "backends": {
                "tencent": {**tencent, **backends.get("tencent", {})},
                "aliyun": {**aliyun, **backends.get("aliyun", {})},
            },
        },
        "templates": {"123456": {"params": ["code", "time"], "ids": {"aliyun": "SMS_123456789"}}},
    }


async def gateway(make_client, up, **overrides):
    client = await make_client(**carriers(up, **overrides))
    account, headers = await add_account(client, "team", balance_milli=10_000)
    return client, account, headers


async def state(client, account) -> tuple[int, list[dict]]:
    """The account's balance and its records (newest first), as the store holds them."""
    fresh = await client.app[STORE].account_by_key(account.api_key)
    page = await client.app[STORE].records(account.id, RecordQuery(per_page=100))
    return fresh.balance_milli, [
        {"status": r.status, "provider": r.provider, "error": r.error} for r in page.records
    ]


async def batch_send(client, headers: dict[str, str], phones: list[str], **fields: Any):
    """POST /api/sms/batch-send of template 123456 with its two params, plus ``fields``."""
    body = {"phones": phones, "template_id": "123456", "params": {"code": "1", "time": "2"}, **fields}
    return await client.post("/api/sms/batch-send", headers=headers, json=body)


async def metric(client, name: str, **labels: str) -> float:
    text = await (await client.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def test_send_and_batch_through_tencent_with_verified_signatures(make_client, upstreams):
    client, account, headers = await gateway(make_client, upstreams)
    response = await client.post("/api/sms/send", json=BODY, headers=headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["data"]["provider"] == "tencent"
    batch = await batch_send(client, headers, ["13800138001", "13800138002", "+14155550123"])
    assert (await batch.json())["data"]["success_count"] == 3
    sent = [request.json() for request in upstreams["tencent"].requests]
    assert sent[0]["TemplateParamSet"] == ["1234", "5"]  # the template's declared order
    assert sum(len(body["PhoneNumberSet"]) for body in sent) == 4
    balance, records = await state(client, account)
    assert balance == 10_000 - 4 * 45
    assert {r["status"] for r in records} == {"success"}


async def test_send_and_batch_through_aliyun_with_its_template_code(make_client, upstreams):
    client, account, headers = await gateway(make_client, upstreams)
    response = await client.post("/api/sms/send", json={**BODY, "provider": "aliyun"}, headers=headers)
    assert response.status == 200, await response.text()
    batch = await batch_send(client, headers, ["13800138001", "13800138002"], provider="aliyun")
    assert (await batch.json())["data"]["success_count"] == 2
    [first, *_] = upstreams["aliyun"].requests
    assert "SMS_123456789" in str(first.query) + first.body.decode()
    balance, records = await state(client, account)
    assert balance == 10_000 - 3 * 60 and {r["provider"] for r in records} == {"aliyun"}


async def test_a_wrong_secret_is_502_naming_the_carriers_code(make_client, upstreams):
    client, account, headers = await gateway(
        make_client, upstreams, tencent={"secret_key": "not-the-right-secret-000000000"}
    )
    response = await client.post("/api/sms/send", json=BODY, headers=headers)
    body = await response.json()
    assert response.status == 502
    assert body["code"] == "PROVIDER_ERROR"
    assert "AuthFailure.SignatureFailure" in body["message"]
    balance, [record] = await state(client, account)
    assert balance == 10_000 and record["status"] == "failed"
    assert "AuthFailure.SignatureFailure" in record["error"]
    assert await metric(client, "smsedge_sms_messages_total", provider="tencent", status="failed") == 1


@pytest.mark.parametrize(
    ("code", "status", "error_code"),
    [
        ("InvalidParameterValue.IncorrectPhoneNumber", 400, "INVALID_PARAMS"),
        ("LimitExceeded.PhoneNumberThirtySecondLimit", 429, "PHONE_RATE_LIMITED"),
    ],
)
async def test_caller_faults_map_to_the_callers_code_and_never_fail_over(
    make_client, upstreams, code, status, error_code
):
    client, account, headers = await gateway(make_client, upstreams, failover=["aliyun"])
    upstreams["tencent"].number_codes["+86" + PHONE] = code
    response = await client.post("/api/sms/send", json=BODY, headers=headers)
    assert response.status == status
    assert (await response.json())["code"] == error_code
    if status == 429:
        assert int(response.headers["Retry-After"]) >= 1
    assert upstreams["aliyun"].requests == []
    assert len(upstreams["tencent"].requests) == 1  # not retried either
    balance, [record] = await state(client, account)
    assert balance == 10_000 and record["status"] == "failed"


@pytest.mark.parametrize("fault", [Fault.HTTP_500, Fault.RESET, Fault.MALFORMED_JSON])
async def test_retryable_faults_are_retried_then_fail_over_at_the_new_carriers_price(
    make_client, upstreams, fault
):
    client, account, headers = await gateway(make_client, upstreams, failover=["aliyun"])
    upstreams["tencent"].fault = fault
    response = await client.post("/api/sms/send", json=BODY, headers=headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["data"]["provider"] == "aliyun"
    assert len(upstreams["tencent"].requests) == 2  # the call and its one retry
    balance, [record] = await state(client, account)
    assert balance == 10_000 - 60 and record == {"status": "success", "provider": "aliyun", "error": None}
    assert await metric(client, "smsedge_sms_messages_total", provider="aliyun", status="success") == 1
    assert (
        await metric(
            client, "smsedge_provider_request_duration_seconds_count", provider="tencent", outcome="retryable"
        )
        == 2
    )


async def test_retryable_faults_without_failover_are_502_and_refunded(make_client, upstreams):
    client, account, headers = await gateway(make_client, upstreams)
    upstreams["tencent"].fault = Fault.HTTP_500
    response = await client.post("/api/sms/send", json=BODY, headers=headers)
    assert response.status == 502
    assert (await response.json())["code"] == "PROVIDER_ERROR"
    balance, [record] = await state(client, account)
    assert balance == 10_000 and record["status"] == "failed"


async def test_a_timeout_is_504_not_retried_and_not_failed_over_by_default(make_client, upstreams):
    client, account, headers = await gateway(
        make_client, upstreams, failover=["aliyun"], tencent={"timeout": 0.2}
    )
    upstreams["tencent"].fault, upstreams["tencent"].delay = Fault.SLOW, 5
    response = await client.post("/api/sms/send", json=BODY, headers=headers)
    assert response.status == 504
    assert (await response.json())["code"] == "PROVIDER_TIMEOUT"
    assert len(upstreams["tencent"].requests) <= 1 and upstreams["aliyun"].requests == []
    balance, [record] = await state(client, account)
    assert balance == 10_000 and record["status"] == "failed" and "TIMEOUT" in record["error"]


async def test_a_timeout_fails_over_when_the_backend_allows_it(make_client, upstreams):
    client, account, headers = await gateway(
        make_client,
        upstreams,
        failover=["aliyun"],
        tencent={"timeout": 0.2, "retries": 0, "failover_on_timeout": True},
    )
    upstreams["tencent"].fault, upstreams["tencent"].delay = Fault.SLOW, 5
    response = await client.post("/api/sms/send", json=BODY, headers=headers)
    assert response.status == 200
    assert (await response.json())["data"]["provider"] == "aliyun"
    balance, [record] = await state(client, account)
    assert balance == 10_000 - 60 and record["provider"] == "aliyun"


async def test_the_circuit_opens_skips_the_carrier_and_closes_after_a_good_trial(make_client, upstreams):
    client, account, headers = await gateway(
        make_client, upstreams, tencent={"retries": 0, "circuit": {"failures": 2, "cooldown": 0.3}}
    )
    tencent = upstreams["tencent"]
    tencent.fault = Fault.HTTP_500
    for _ in range(2):
        assert (await client.post("/api/sms/send", json=BODY, headers=headers)).status == 502
    assert await metric(client, "smsedge_provider_circuit_open", provider="tencent") == 1
    calls = len(tencent.requests)
    skipped = await client.post("/api/sms/send", json=BODY, headers=headers)
    assert skipped.status == 502 and "CIRCUIT_OPEN" in (await skipped.json())["message"]
    assert len(tencent.requests) == calls  # skipped while open
    tencent.fault = None
    await asyncio.sleep(0.35)  # past the cool-down: one trial call goes through
    assert (await client.post("/api/sms/send", json=BODY, headers=headers)).status == 200
    assert await metric(client, "smsedge_provider_circuit_open", provider="tencent") == 0
    balance, records = await state(client, account)
    assert balance == 10_000 - 45 and [r["status"] for r in records].count("failed") == 3


async def test_an_open_circuit_sends_straight_to_the_failover_carrier(make_client, upstreams):
    client, _, headers = await gateway(
        make_client,
        upstreams,
        failover=["aliyun"],
        tencent={"retries": 0, "circuit": {"failures": 1, "cooldown": 60}},
    )
    upstreams["tencent"].fault = Fault.HTTP_500
    assert (await client.post("/api/sms/send", json=BODY, headers=headers)).status == 200
    calls = len(upstreams["tencent"].requests)
    response = await client.post("/api/sms/send", json=BODY, headers=headers)
    assert (await response.json())["data"]["provider"] == "aliyun"
    assert len(upstreams["tencent"].requests) == calls


async def test_in_a_batch_only_the_numbers_refused_as_retryable_fail_over(make_client, upstreams):
    client, account, headers = await gateway(
        make_client, upstreams, failover=["aliyun"], tencent={"retries": 0}
    )
    upstreams["tencent"].number_codes.update(
        {
            "+8613800138002": "InternalError",  # Tencent's trouble: worth another carrier
            "+8613800138003": "InvalidParameterValue.IncorrectPhoneNumber",  # the caller's: final
        }
    )
    response = await batch_send(client, headers, ["13800138001", "13800138002", "13800138003"])
    body = await response.json()
    assert response.status == 200
    assert [r["success"] for r in body["data"]["results"]] == [True, True, False]
    [aliyun_call] = upstreams["aliyun"].requests
    assert "13800138002" in str(aliyun_call.query) + aliyun_call.body.decode()
    balance, records = await state(client, account)
    assert balance == 10_000 - 45 - 60  # each number at the price of the carrier that sent it
    assert sorted((r["provider"], r["status"]) for r in records) == [
        ("aliyun", "success"),
        ("tencent", "failed"),
        ("tencent", "success"),
    ]
