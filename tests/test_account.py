"""GET /api/account/info: the seed's shape, money in integer milli-yuan, counters and the local day."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.config.model import BucketConfig
from gateway.keys import STORE
from tests.conftest import DEMO_HEADERS, SEND_BODY, FakeClock, add_account

SHANGHAI = ZoneInfo("Asia/Shanghai")
NO_PHONE_LIMITS = {"ratelimit": {"phone": []}}  # these tests send many messages on purpose
UNLIMITED = BucketConfig(rate=10_000, burst=10_000)


def numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid mainland mobile numbers."""
    return [f"1390013{start + i:04d}" for i in range(count)]


async def info(client, headers=DEMO_HEADERS) -> dict:
    response = await client.get("/api/account/info", headers=headers)
    body = await response.json()
    assert response.status == 200, body
    assert body["success"] is True
    return body["data"]


async def send(client, phone: str, headers=DEMO_HEADERS):
    return await client.post("/api/sms/send", json={**SEND_BODY, "phone": phone}, headers=headers)


async def balance_milli(client, headers) -> int:
    account = await client.app[STORE].account_by_key(headers["X-API-Key"])
    return account.balance_milli


#: What account info adds beside the seed's fields, for an account without limits (docs/quotas.md).
NO_QUOTAS = {"daily_limit": None, "monthly_sent": 0, "monthly_limit": None}


async def test_info_has_the_seed_shape(client):
    response = await client.get("/api/account/info", headers=DEMO_HEADERS)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {
        "success": True,
        "data": {
            "balance": 100.0,
            "total_sent": 0,
            "today_sent": 0,
            "verification_status": "approved",
            **NO_QUOTAS,
        },
    }


async def test_unverified_account_reads_its_status(client):
    _, headers = await add_account(client, "waiting", balance_milli=1234, verification_status="pending")
    data = await info(client, headers)
    assert data == {
        "balance": 1.23,
        "total_sent": 0,
        "today_sent": 0,
        "verification_status": "pending",
        **NO_QUOTAS,
    }


async def test_fractional_price_is_exact_and_shown_rounded_down(make_client):
    client = await make_client(providers={"backends": {"mock": {"price": 0.045}}}, **NO_PHONE_LIMITS)
    _, headers = await add_account(client, "payer", balance_milli=1000, ratelimit=UNLIMITED)
    shown = []
    for phone in numbers(3):
        assert (await send(client, phone, headers)).status == 200
        shown.append((await info(client, headers))["balance"])
    assert shown == [0.95, 0.91, 0.86]  # 0.955, 0.910, 0.865 yuan: never round money up
    assert await balance_milli(client, headers) == 865
    data = await info(client, headers)
    assert (data["total_sent"], data["today_sent"]) == (3, 3)


async def test_many_sends_add_up_without_float_drift(make_client):
    client = await make_client(providers={"backends": {"mock": {"price": 0.01}}}, **NO_PHONE_LIMITS)
    _, headers = await add_account(client, "drift", balance_milli=1000, ratelimit=UNLIMITED)
    response = await client.post(
        "/api/sms/batch-send", headers=headers, json={"phones": numbers(30), "template_id": "123456"}
    )
    assert (await response.json())["data"]["success_count"] == 30
    assert (await info(client, headers))["balance"] == 0.7  # 1.00 - 30 × 0.01, exactly
    assert await balance_milli(client, headers) == 700


async def test_refusal_is_refunded_in_full(make_client):
    client = await make_client(providers={"backends": {"mock": {"fail_rate": 1.0}}}, **NO_PHONE_LIMITS)
    assert (await send(client, "13800138000")).status == 502
    batch = await client.post(
        "/api/sms/batch-send", headers=DEMO_HEADERS, json={"phones": numbers(4), "template_id": "123456"}
    )
    body = await batch.json()
    assert body["data"]["failed_count"] == 4 and body["success"] is False
    assert await info(client) == {
        "balance": 100.0,
        "total_sent": 0,
        "today_sent": 0,
        "verification_status": "approved",
        **NO_QUOTAS,  # refusals do not count against a quota either
    }
    assert await balance_milli(client, DEMO_HEADERS) == 100_000


async def test_batch_is_charged_per_distinct_number_and_all_or_nothing(make_client):
    client = await make_client(**NO_PHONE_LIMITS)
    _, headers = await add_account(client, "batcher", balance_milli=270, ratelimit=UNLIMITED)
    phones = numbers(5)
    response = await client.post(
        "/api/sms/batch-send", headers=headers, json={"phones": [*phones, phones[0]], "template_id": "123456"}
    )
    assert (await response.json())["data"]["total"] == 5
    assert await info(client, headers) == {
        "balance": 0.02,
        "total_sent": 5,
        "today_sent": 5,
        "verification_status": "approved",
        **NO_QUOTAS,
        "monthly_sent": 5,
    }
    short = await client.post(
        "/api/sms/batch-send", headers=headers, json={"phones": numbers(2, start=50), "template_id": "123456"}
    )
    body = await short.json()
    assert short.status == 403 and body["code"] == "INSUFFICIENT_BALANCE"
    assert await balance_milli(client, headers) == 20
    listed = await client.get("/api/sms/records", headers=headers)
    assert (await listed.json())["data"]["total"] == 5


async def test_concurrent_sends_never_overdraw(make_client):
    client = await make_client(**NO_PHONE_LIMITS)
    affordable = 7
    _, headers = await add_account(client, "racer", balance_milli=affordable * 50, ratelimit=UNLIMITED)
    responses = await asyncio.gather(*(send(client, phone, headers) for phone in numbers(3 * affordable)))
    statuses = sorted(response.status for response in responses)
    assert statuses == [200] * affordable + [403] * (2 * affordable)
    for response in responses:
        if response.status == 403:
            assert (await response.json())["code"] == "INSUFFICIENT_BALANCE"
    data = await info(client, headers)
    assert data["balance"] == 0.0 and data["total_sent"] == affordable
    assert await balance_milli(client, headers) == 0
    listed = await (await client.get("/api/sms/records", headers=headers)).json()
    assert listed["data"]["total"] == affordable
    assert {r["status"] for r in listed["data"]["records"]} == {"success"}


async def test_today_sent_rolls_over_at_local_midnight(make_client):
    clock = FakeClock(datetime(2024, 1, 1, 23, 59, 59, tzinfo=SHANGHAI).timestamp())
    client = await make_client(clock=clock, **NO_PHONE_LIMITS)
    for phone in numbers(2):
        assert (await send(client, phone)).status == 200
    data = await info(client)
    assert (data["today_sent"], data["total_sent"]) == (2, 2)
    clock.advance(2)  # 2024-01-02 00:00:01 in Shanghai
    data = await info(client)
    assert (data["today_sent"], data["total_sent"]) == (0, 2)
    assert (await send(client, numbers(1, start=9)[0])).status == 200
    data = await info(client)
    assert (data["today_sent"], data["total_sent"]) == (1, 3)


async def test_utc_midnight_is_not_a_new_day_in_shanghai(make_client):
    clock = FakeClock(datetime(2024, 1, 1, 23, 59, 59, tzinfo=UTC).timestamp())  # 07:59:59 local
    client = await make_client(clock=clock, **NO_PHONE_LIMITS)
    assert (await send(client, "13800138000")).status == 200
    clock.advance(2)  # past UTC midnight, still the morning of 2024-01-02 in Shanghai
    assert (await info(client))["today_sent"] == 1


async def test_today_sent_follows_the_configured_zone(make_client):
    new_york = ZoneInfo("America/New_York")
    clock = FakeClock(datetime(2024, 3, 5, 23, 59, 0, tzinfo=new_york).timestamp())
    client = await make_client(clock=clock, server={"timezone": "America/New_York"}, **NO_PHONE_LIMITS)
    assert (await send(client, "13800138000")).status == 200
    clock.now = datetime(2024, 3, 5, 23, 59, 59, tzinfo=new_york).timestamp()
    assert (await info(client))["today_sent"] == 1  # 04:59:59 UTC on the 6th: still the 5th in New York
    clock.advance(2)
    assert (await info(client))["today_sent"] == 0
