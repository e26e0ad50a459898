"""The contract's 429s over HTTP, on both backends: headers, costs, per-number windows, outages."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.config.model import BucketConfig
from gateway.keys import STORE
from gateway.store.records import RecordQuery
from tests.conftest import DEMO_HEADERS, SEND_BODY, add_account

SLOW = {"rate": 0.001, "burst": 3}  # no refill while a test runs


@pytest.fixture(params=["memory", "redis"])
def backend(request) -> dict:
    """Config overrides selecting a rate-limit backend (a real Redis for ``redis``)."""
    if request.param == "memory":
        return {"ratelimit": {"backend": "memory"}}
    server = request.getfixturevalue("redis_server")
    return {
        "ratelimit": {"backend": "redis"},
        "redis": {"url": server.url, "timeout": 0.5},
        "server": {"secret_key": "test-secret-key-0123456789"},
    }


def limits(backend: dict, **ratelimit) -> dict:
    return {**backend, "ratelimit": {**backend["ratelimit"], **ratelimit}}


async def until_ready(client) -> None:
    """Redis is back: calls fail fast until the client's probe has had an answer."""
    async with asyncio.timeout(5):
        while (await client.get("/readyz")).status != 200:
            await asyncio.sleep(0.05)


async def send(client, headers, phone="13800138000", **extra):
    return await client.post("/api/sms/send", json={**SEND_BODY, "phone": phone, **extra}, headers=headers)


async def test_headers_on_every_limited_response_and_a_429_when_empty(make_client, backend):
    client = await make_client(**limits(backend, account=SLOW))
    _, headers = await add_account(client, "team", balance_milli=100_000)
    remaining = []
    for n in range(3):
        response = await send(client, headers, phone=f"1380013800{n}")
        assert response.status == 200
        assert response.headers["RateLimit-Limit"] == "3"
        remaining.append(response.headers["RateLimit-Remaining"])
        assert int(response.headers["RateLimit-Reset"]) >= 1
    assert remaining == ["2", "1", "0"]
    refused = await send(client, headers, phone="13800138009")
    body = await refused.json()
    assert refused.status == 429
    assert body["code"] == "RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Remaining"] == "0"
    bad = await send(client, headers, phone="not-a-phone")
    assert bad.status == 429  # a refused request is refused before it is even read


async def test_refused_requests_charge_nothing_and_write_no_record(make_client, backend):
    client = await make_client(**limits(backend, account={"rate": 0.001, "burst": 1}))
    account, headers = await add_account(client, "team", balance_milli=100_000)
    assert (await send(client, headers)).status == 200
    for _ in range(3):
        assert (await send(client, headers, phone="13900139000")).status == 429
    page = await client.app[STORE].records(account.id, RecordQuery())
    assert page.total == 1
    assert (await client.app[STORE].account_by_key(account.api_key)).balance_milli == 100_000 - 50


async def test_reads_are_not_limited(make_client, backend):
    client = await make_client(**limits(backend, account={"rate": 0.001, "burst": 1}))
    for _ in range(5):
        response = await client.get("/api/account/info", headers=DEMO_HEADERS)
        assert response.status == 200
        assert "RateLimit-Limit" not in response.headers


async def test_a_batch_costs_one_token_per_distinct_number(make_client, backend):
    client = await make_client(**limits(backend, account={"rate": 0.001, "burst": 5}))
    _, headers = await add_account(client, "team", balance_milli=100_000)
    phones = ["13800138001", "13800138002", "13800138003", "13800138003"]
    response = await client.post(
        "/api/sms/batch-send", json={"phones": phones, "template_id": "1"}, headers=headers
    )
    assert response.status == 200
    assert response.headers["RateLimit-Remaining"] == "2"
    assert (await send(client, headers, phone="13800138004")).status == 200
    assert (await send(client, headers, phone="13800138005")).status == 200
    assert (await send(client, headers, phone="13800138006")).status == 429


async def test_an_accounts_own_limit_overrides_the_default(make_client, backend):
    client = await make_client(**limits(backend, account={"rate": 0.001, "burst": 1}))
    _, roomy = await add_account(client, "roomy", balance_milli=100_000, ratelimit=BucketConfig(0.001, 4))
    statuses = [(await send(client, roomy, phone=f"1380013800{n}")).status for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


async def test_concurrent_sends_against_a_bucket_of_b_admit_exactly_b(make_client, backend):
    client = await make_client(**limits(backend, account={"rate": 0.001, "burst": 10}))
    _, headers = await add_account(client, "team", balance_milli=1_000_000)
    responses = await asyncio.gather(*(send(client, headers, phone=f"139{n:08d}") for n in range(40)))
    statuses = sorted(response.status for response in responses)
    assert statuses.count(200) == 10
    assert statuses.count(429) == 30


async def test_the_same_number_is_limited_across_forms_and_accounts(make_client, backend):
    client = await make_client(**limits(backend, phone=[{"limit": 1, "seconds": 60}]))
    _, other = await add_account(client, "other", balance_milli=100_000)
    assert (await send(client, DEMO_HEADERS, phone="13800138000")).status == 200
    for headers, form in ((DEMO_HEADERS, "+8613800138000"), (other, "008613800138000")):
        refused = await send(client, headers, phone=form)
        body = await refused.json()
        assert refused.status == 429
        assert body["code"] == "PHONE_RATE_LIMITED"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # The gateway's own window says so, and does not read like a carrier's refusal.
        assert "网关限制" in body["message"] and "(PHONE_RATE_LIMITED)" not in body["message"]
        assert f"{refused.headers['Retry-After']} 秒后重试" in body["message"]
    assert (await send(client, DEMO_HEADERS, phone="13900139000")).status == 200


async def test_in_a_batch_limited_numbers_fail_and_the_rest_are_sent(make_client, backend):
    client = await make_client(**limits(backend, phone=[{"limit": 1, "seconds": 60}]))
    account, headers = await add_account(client, "team", balance_milli=100_000)
    assert (await send(client, headers, phone="13800138000")).status == 200
    response = await client.post(
        "/api/sms/batch-send",
        headers=headers,
        json={"phones": ["13800138000", "13900139000"], "template_id": "1"},
    )
    body = await response.json()
    assert response.status == 200
    assert body["data"]["success_count"] == 1 and body["data"]["failed_count"] == 1
    limited, sent = body["data"]["results"]
    assert limited["phone"] == "138****8000" and limited["success"] is False
    assert "频率" in limited["message"] and "message_id" not in limited
    assert sent["success"] is True
    refreshed = await client.app[STORE].account_by_key(account.api_key)
    assert refreshed.balance_milli == 100_000 - 2 * 50  # the limited number cost nothing


async def test_redis_outage_fails_open_logs_once_and_recovers(make_client, redis_server, caplog):
    client = await make_client(
        ratelimit={
            "backend": "redis",
            "on_backend_error": "allow",
            "account": {"rate": 0.001, "burst": 2},
            "phone": [{"limit": 1, "seconds": 60}],
        },
        redis={"url": redis_server.url, "timeout": 0.3},
        server={"secret_key": "test-secret-key-0123456789"},
    )
    _, headers = await add_account(client, "team", balance_milli=100_000)
    redis_server.stop()
    with caplog.at_level(logging.ERROR, logger="smsedge.ratelimit"):
        for n in range(4):
            response = await send(client, headers, phone=f"1380013800{n}")
            assert response.status == 200  # fail open: served, without limit headers
            assert "RateLimit-Limit" not in response.headers
    assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 1
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["failed"] == ["ratelimit"]
    metrics = await (await client.get("/metrics")).text()
    assert "smsedge_ratelimit_backend_errors_total 8.0" in metrics  # bucket + windows, 4 sends
    redis_server.start()
    await until_ready(client)
    statuses = [(await send(client, headers, phone=f"1390013900{n}")).status for n in range(3)]
    assert statuses == [200, 200, 429]
    assert (await client.get("/readyz")).status == 200


async def test_redis_outage_with_deny_answers_503(make_client, redis_server):
    client = await make_client(
        ratelimit={"backend": "redis", "on_backend_error": "deny"},
        redis={"url": redis_server.url, "timeout": 0.3},
        server={"secret_key": "test-secret-key-0123456789"},
    )
    redis_server.stop()
    response = await send(client, DEMO_HEADERS)
    assert response.status == 503
    assert (await response.json())["code"] == "UNAVAILABLE"
    records = await (await client.get("/api/sms/records", headers=DEMO_HEADERS)).json()
    assert records["data"]["total"] == 0
    redis_server.start()
    await until_ready(client)
    assert (await send(client, DEMO_HEADERS)).status == 200


async def test_a_request_its_bucket_refuses_counts_in_no_number_s_window(make_client, backend):
    """The bucket and the windows are one decision: a send the bucket refuses leaves every
    number's window as it was, so another account may still send to the number."""
    client = await make_client(
        **limits(backend, account={"rate": 0.001, "burst": 1}, phone=[{"limit": 1, "seconds": 60}])
    )
    _, first = await add_account(client, "first", balance_milli=100_000)
    _, second = await add_account(client, "second", balance_milli=100_000)
    _, third = await add_account(client, "third", balance_milli=100_000)
    assert (await send(client, first, phone="13800138001")).status == 200
    refused = await send(client, first, phone="13800138002")
    assert (refused.status, (await refused.json())["code"]) == (429, "RATE_LIMITED")
    assert (await send(client, second, phone="13800138002")).status == 200
    again = await send(client, third, phone="13800138002")  # the window itself still holds
    assert (again.status, (await again.json())["code"]) == (429, "PHONE_RATE_LIMITED")
