"""Quotas per account over HTTP, on SQLite and on Redis: ``daily_limit`` and ``monthly_limit``.

A send over a limit is 429 ``QUOTA_EXCEEDED`` with ``Retry-After`` until the limit's period ends in
``server.timezone``, and costs nothing: no charge, no record, no carrier call. The limits come from
the config, the admin API and the CLI (``test_quotas_processes``); account info shows them. The
store's side of it (atomic counts, give-backs, every Redis mode): ``test_store_quotas``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.keys import STORE
from tests.conftest import DEMO_HEADERS, SEND_BODY, FakeClock, add_account

SHANGHAI = ZoneInfo("Asia/Shanghai")  # server.timezone of the shipped config
#: 22:00 on 15 March, local time: 2 h to the next day, 16 days and 2 h to the next month.
EVENING = datetime(2025, 3, 15, 22, 0, tzinfo=SHANGHAI).timestamp()
TO_MIDNIGHT, TO_APRIL = 2 * 3600, 16 * 86400 + 2 * 3600
ADMIN_TOKEN = "quota-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REFUSING = {"backends": {"refusing": {"plugin": "mock", "price": 0.05, "fail_rate": 1.0}}}


def phones(count: int, start: int = 0) -> list[str]:
    return [f"1370013{start + n:04d}" for n in range(count)]


async def gateway(make_client, store_backend, clock: FakeClock, **limits: int):
    """A gateway at ``clock``, and the headers of an account with ``limits`` and 10 yuan."""
    client = await make_client(
        clock=clock,
        admin={"tokens": [{"name": "ops", "token": ADMIN_TOKEN}]},
        providers=REFUSING,
        **store_backend,
    )
    _, headers = await add_account(client, "capped", balance_milli=10_000, **limits)
    return client, headers


async def send(client, headers, phone: str, **extra):
    return await client.post("/api/sms/send", json={**SEND_BODY, "phone": phone, **extra}, headers=headers)


async def batch(client, headers, numbers: list[str]):
    return await client.post(
        "/api/sms/batch-send", json={"phones": numbers, "template_id": "123456"}, headers=headers
    )


async def info(client, headers) -> dict:
    response = await client.get("/api/account/info", headers=headers)
    assert response.status == 200
    return (await response.json())["data"]


async def records_total(client, headers) -> int:
    return (await (await client.get("/api/sms/records", headers=headers)).json())["data"]["total"]


async def metric(client, name: str, **labels: str) -> float:
    text = await (await client.get("/metrics")).text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def carrier_calls(client) -> float:
    return await metric(client, "smsedge_provider_request_duration_seconds_count", provider="mock")


async def refused_for_quota(response, message: str, retry_after: int) -> None:
    body = await response.json()
    assert response.status == 429, body
    assert (body["code"], body["message"]) == ("QUOTA_EXCEEDED", message)
    assert response.headers["Retry-After"] == str(retry_after)


async def test_a_daily_limit_allows_exactly_n_then_429_until_local_midnight(make_client, store_backend):
    clock = FakeClock(EVENING)
    client, headers = await gateway(make_client, store_backend, clock, daily_limit=3)
    for phone in phones(3):
        assert (await send(client, headers, phone)).status == 200
    spent, calls = (await info(client, headers))["balance"], await carrier_calls(client)
    refused = await send(client, headers, phones(1, 3)[0])
    await refused_for_quota(refused, "发送失败:已达到今日发送上限", TO_MIDNIGHT)
    # Nothing happened: no charge, no record, no carrier call; counted as a quota refusal.
    assert (await info(client, headers))["balance"] == spent == 10.0 - 3 * 0.05
    assert await records_total(client, headers) == 3
    assert await carrier_calls(client) == calls == 3
    assert await metric(client, "smsedge_quota_refusals_total", period="daily") == 1
    assert await metric(client, "smsedge_quota_refusals_total", period="monthly") == 0
    clock.advance(TO_MIDNIGHT - 1)  # 23:59:59: still today, one second left
    await refused_for_quota(await send(client, headers, phones(1, 4)[0]), "发送失败:已达到今日发送上限", 1)
    clock.advance(1)  # local midnight: a new day
    for phone in phones(3, 10):
        assert (await send(client, headers, phone)).status == 200
    assert (await send(client, headers, phones(1, 20)[0])).status == 429
    assert (await info(client, headers))["monthly_sent"] == 6


async def test_a_monthly_limit_holds_across_days_until_the_first_of_next_month(make_client, store_backend):
    clock = FakeClock(EVENING)
    client, headers = await gateway(make_client, store_backend, clock, daily_limit=5, monthly_limit=4)
    for phone in phones(3):
        assert (await send(client, headers, phone)).status == 200
    clock.advance(TO_MIDNIGHT)  # 16 March
    assert (await send(client, headers, phones(1, 3)[0])).status == 200
    retry = TO_APRIL - TO_MIDNIGHT
    await refused_for_quota(
        await send(client, headers, phones(1, 4)[0]), "发送失败:已达到本月发送上限", retry
    )
    clock.advance(retry - 10)  # 31 March, 23:59:50: still March
    await refused_for_quota(await send(client, headers, phones(1, 5)[0]), "发送失败:已达到本月发送上限", 10)
    assert await metric(client, "smsedge_quota_refusals_total", period="monthly") == 2
    assert (await info(client, headers))["monthly_sent"] == 4
    clock.advance(10)  # 1 April
    assert (await info(client, headers))["monthly_sent"] == 0
    assert (await send(client, headers, phones(1, 6)[0])).status == 200
    assert await records_total(client, headers) == 5


async def test_a_batch_over_the_limit_is_refused_whole(make_client, store_backend):
    client, headers = await gateway(make_client, store_backend, FakeClock(EVENING), daily_limit=5)
    assert (await (await batch(client, headers, phones(3))).json())["data"]["success_count"] == 3
    refused = await batch(client, headers, phones(3, 3))  # 6 would pass 5: none of the 3 is sent
    await refused_for_quota(refused, "发送失败:已达到今日发送上限", TO_MIDNIGHT)
    assert await records_total(client, headers) == 3
    assert (await info(client, headers))["balance"] == 10.0 - 3 * 0.05
    assert (await (await batch(client, headers, phones(2, 3))).json())["data"]["success_count"] == 2


async def test_messages_a_carrier_refuses_do_not_count(make_client, store_backend):
    client, headers = await gateway(make_client, store_backend, FakeClock(EVENING), daily_limit=2)
    for phone in phones(3):
        assert (await send(client, headers, phone, provider="refusing")).status == 502
    assert (await info(client, headers))["monthly_sent"] == 0
    for phone in phones(2, 3):
        assert (await send(client, headers, phone)).status == 200
    assert (await send(client, headers, phones(1, 5)[0])).status == 429
    assert (await info(client, headers))["monthly_sent"] == 2


async def test_concurrent_sends_never_pass_the_limit(make_client, store_backend):
    client, headers = await gateway(make_client, store_backend, FakeClock(EVENING), daily_limit=10)
    responses = await asyncio.gather(*(send(client, headers, phone) for phone in phones(60)))
    statuses = [response.status for response in responses]
    assert (statuses.count(200), statuses.count(429)) == (10, 50)
    assert await records_total(client, headers) == 10
    assert (await info(client, headers))["balance"] == 10.0 - 10 * 0.05


async def test_account_info_shows_the_limits_beside_the_seeds_fields(make_client, store_backend):
    client, headers = await gateway(make_client, store_backend, FakeClock(EVENING), monthly_limit=100)
    assert (await send(client, headers, phones(1)[0])).status == 200
    assert await info(client, headers) == {
        "balance": 9.95,
        "total_sent": 1,
        "today_sent": 1,
        "verification_status": "approved",
        "daily_limit": None,
        "monthly_sent": 1,
        "monthly_limit": 100,
    }


async def patch(client, headers, api_key: str, **body) -> tuple[int, dict]:
    response = await client.patch(f"/admin/api/accounts/{api_key}", json=body, headers=headers)
    return response.status, await response.json()


async def test_the_admin_api_sets_and_clears_limits_audited_and_at_once(make_client, store_backend):
    client, headers = await gateway(make_client, store_backend, FakeClock(EVENING))
    key = headers["X-API-Key"]
    assert (await send(client, headers, phones(1)[0])).status == 200  # counted before any limit
    status, body = await patch(client, ADMIN, key, daily_limit=2, monthly_limit=50)
    assert status == 200, body
    assert (body["data"]["daily_limit"], body["data"]["monthly_limit"]) == (2, 50)
    assert (await send(client, headers, phones(1, 1)[0])).status == 200
    assert (await send(client, headers, phones(1, 2)[0])).status == 429  # the first send counted
    status, body = await patch(client, ADMIN, key, daily_limit=None)
    assert (status, body["data"]["daily_limit"], body["data"]["monthly_limit"]) == (200, None, 50)
    assert (await send(client, headers, phones(1, 3)[0])).status == 200
    listed = await client.get("/admin/api/accounts", headers=ADMIN)
    shown = {a["api_key"]: a for a in (await listed.json())["data"]["accounts"]}[key]
    assert (shown["daily_limit"], shown["monthly_limit"]) == (None, 50)
    entries = (await (await client.get("/admin/api/audit", headers=ADMIN)).json())["data"]["entries"]
    changes = [
        (e["actor"], e["action"], e["before"], e["after"]) for e in entries if e["account"]["api_key"] == key
    ]
    assert changes[:2] == [
        ("ops", "update", {"daily_limit": 2}, {"daily_limit": None}),
        (
            "ops",
            "update",
            {"daily_limit": None, "monthly_limit": None},
            {"daily_limit": 2, "monthly_limit": 50},
        ),
    ]


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True, 10**9 + 1, [5]])
async def test_the_admin_api_refuses_a_limit_that_is_not_a_whole_number_of_messages(
    make_client, store_backend, value
):
    client, headers = await gateway(make_client, store_backend, FakeClock(EVENING))
    status, body = await patch(client, ADMIN, headers["X-API-Key"], monthly_limit=value)
    assert (status, body["code"]) == (400, "INVALID_PARAMS")
    assert "monthly_limit" in body["message"]
    account = await client.app[STORE].account_by_key(headers["X-API-Key"])
    assert account.monthly_limit is None


async def test_the_config_gives_a_listed_account_its_limits(make_client, store_backend, config_document):
    seed = {**config_document["accounts"][0], "daily_limit": 1, "monthly_limit": 30}
    client = await make_client(clock=FakeClock(EVENING), accounts=[seed], **store_backend)
    data = await info(client, DEMO_HEADERS)
    assert (data["daily_limit"], data["monthly_limit"], data["monthly_sent"]) == (1, 30, 0)
    assert (await send(client, DEMO_HEADERS, phones(1)[0])).status == 200
    await refused_for_quota(
        await send(client, DEMO_HEADERS, phones(1, 1)[0]), "发送失败:已达到今日发送上限", TO_MIDNIGHT
    )
