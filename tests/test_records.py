"""GET /api/sms/records: paging, newest first, filters in the server's time zone, isolation, 400s."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.keys import STORE
from gateway.store.records import NewRecord
from tests.conftest import DEMO_HEADERS, SEND_BODY, FakeClock, add_account

SHANGHAI = ZoneInfo("Asia/Shanghai")
NO_PHONE_LIMITS = {"ratelimit": {"phone": []}}  # these tests send many messages on purpose
FLAKY = {"providers": {"backends": {"flaky": {"plugin": "mock", "price": 0.05, "fail_rate": 1.0}}}}


def numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid mainland mobile numbers (never the same number twice: no per-phone limits)."""
    return [f"1380013{start + i:04d}" for i in range(count)]


def at(text: str, zone: ZoneInfo = SHANGHAI) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone).timestamp()


async def send(client, phone: str, headers=DEMO_HEADERS, **extra) -> dict:
    response = await client.post(
        "/api/sms/send", json={**SEND_BODY, "phone": phone, **extra}, headers=headers
    )
    return await response.json()


async def batch(client, phones: list[str], headers=DEMO_HEADERS) -> dict:
    response = await client.post(
        "/api/sms/batch-send", headers=headers, json={"phones": phones, "template_id": "123456"}
    )
    assert response.status == 200
    return await response.json()


async def records(client, headers=DEMO_HEADERS, **params) -> dict:
    response = await client.get("/api/sms/records", params=params, headers=headers)
    body = await response.json()
    assert response.status == 200, body
    assert body["success"] is True
    return body["data"]


async def test_paging_defaults_limits_and_past_the_end(make_client):
    client = await make_client(**NO_PHONE_LIMITS)
    await batch(client, numbers(25))
    first = await records(client)
    assert (first["page"], first["per_page"], first["total"]) == (1, 10, 25)
    assert len(first["records"]) == 10
    third = await records(client, page=3)
    assert len(third["records"]) == 5 and third["total"] == 25
    past = await records(client, page=4)
    assert past["records"] == [] and past["total"] == 25 and past["page"] == 4
    everything = await records(client, per_page=100)
    assert len(everything["records"]) == 25 and everything["per_page"] == 100
    paged = [r["id"] for page in (1, 2, 3) for r in (await records(client, page=page))["records"]]
    assert paged == [r["id"] for r in everything["records"]]


async def test_newest_first_with_ties_broken_by_id(make_client):
    clock = FakeClock(at("2024-05-01 10:00:10"))
    client = await make_client(clock=clock, **NO_PHONE_LIMITS)
    later = (await send(client, numbers(1)[0]))["data"]["message_id"]
    clock.now = at("2024-05-01 10:00:00")  # an older timestamp written after: time decides, not id
    same_second = await batch(client, numbers(3, start=1))
    tied = [result["message_id"] for result in same_second["data"]["results"]]
    listed = (await records(client))["records"]
    assert [r["message_id"] for r in listed] == [later, *reversed(tied)]
    tied_ids = [r["id"] for r in listed[1:]]
    assert tied_ids == sorted(tied_ids, reverse=True)
    assert [r["created_at"] for r in listed] == ["2024-05-01 10:00:10"] + ["2024-05-01 10:00:00"] * 3


async def test_status_filter(make_client):
    client = await make_client(**FLAKY, **NO_PHONE_LIMITS)
    for phone in numbers(2):
        assert (await send(client, phone))["success"] is True
    refused = await send(client, numbers(1, start=5)[0], provider="flaky")
    assert refused["code"] == "PROVIDER_ERROR"
    account = await client.app[STORE].account_by_key(DEMO_HEADERS["X-API-Key"])
    pending = NewRecord("pending-message-1", "138****0009", "123456", "mock", 50)
    assert await client.app[STORE].reserve(account.id, [pending], 0)
    assert (await records(client))["total"] == 4
    success = await records(client, status="success")
    assert success["total"] == 2 and {r["status"] for r in success["records"]} == {"success"}
    failed = await records(client, status="failed")
    [record] = failed["records"]
    assert failed["total"] == 1 and record["status"] == "failed" and "MOCK_REFUSED" in record["error"]
    [waiting] = (await records(client, status="pending"))["records"]
    assert waiting["message_id"] == "pending-message-1" and "error" not in waiting


async def test_time_filters_are_inclusive_to_the_second(make_client):
    clock = FakeClock(at("2024-05-01 12:00:00") + 0.5)
    client = await make_client(clock=clock, **NO_PHONE_LIMITS)
    ids = []
    for phone in numbers(3):
        ids.append((await send(client, phone))["data"]["message_id"])
        clock.advance(5)  # 12:00:00.5, 12:00:05.5, 12:00:10.5

    async def matching(**params) -> list[str]:
        data = await records(client, **params)
        assert data["total"] == len(data["records"])
        return sorted(r["message_id"] for r in data["records"])

    assert await matching(start_time="2024-05-01 12:00:05", end_time="2024-05-01 12:00:05") == [ids[1]]
    assert await matching(start_time="2024-05-01 12:00:00", end_time="2024-05-01 12:00:05") == sorted(ids[:2])
    assert await matching(start_time="2024-05-01 12:00:05") == sorted(ids[1:])
    assert await matching(end_time="2024-05-01 12:00:00") == [ids[0]]
    assert await matching(start_time="2024-05-01 12:00:11") == []
    assert await matching(status="success", start_time="2024-05-01 12:00:10") == [ids[2]]


async def test_created_at_uses_the_default_zone_asia_shanghai(make_client):
    clock = FakeClock(datetime(2024, 1, 1, 4, 0, 0, tzinfo=UTC).timestamp())
    client = await make_client(clock=clock)
    await send(client, "13800138000")
    [record] = (await records(client))["records"]
    assert record["created_at"] == "2024-01-01 12:00:00"
    assert record["updated_at"] == "2024-01-01 12:00:00"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", record["created_at"])


async def test_created_at_and_filters_follow_the_configured_zone(make_client):
    clock = FakeClock(datetime(2024, 7, 1, 12, 0, 0, 500_000, tzinfo=UTC).timestamp())
    client = await make_client(clock=clock, server={"timezone": "America/New_York"})
    await send(client, "13800138000")
    [record] = (await records(client))["records"]
    assert record["created_at"] == "2024-07-01 08:00:00"  # EDT, UTC-4
    # Read as New York time these bounds hold the record; read as UTC or Shanghai they would not.
    assert (await records(client, end_time="2024-07-01 08:00:00"))["total"] == 1
    assert (await records(client, start_time="2024-07-01 08:00:00"))["total"] == 1
    assert (await records(client, start_time="2024-07-01 08:00:01"))["total"] == 0
    assert (await records(client, end_time="2024-07-01 07:59:59"))["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"status": "delivered"},
        {"status": "SUCCESS"},
        {"status": ""},
        {"start_time": "2024-01-01"},
        {"start_time": "2024/01/01 12:00:00"},
        {"start_time": "2024-01-01T12:00:00"},
        {"end_time": "2024-13-01 00:00:00"},
        {"end_time": "2024-02-30 00:00:00"},
        {"end_time": "1704067200"},
        {"start_time": "2024-01-02 00:00:00", "end_time": "2024-01-01 23:59:59"},
        {"start_time": "2024-01-01 00:00:01", "end_time": "2024-01-01 00:00:00"},
        {"page": "0"},
        {"page": "-1"},
        {"page": "1e30"},
        {"page": "1.5"},
        {"page": "abc"},
        {"per_page": "0"},
        {"per_page": "101"},
        {"per_page": "abc"},
        {"per_page": "-5"},
        {"status": "success\x00"},
        {"page": "1\x00"},
        {"per_page": "\x0010"},
        {"start_time": "2024-01-01 00:00:00\x00"},
    ],
)
async def test_bad_parameters_are_400_in_the_envelope(client, params):
    response = await client.get("/api/sms/records", params=params, headers=DEMO_HEADERS)
    body = await response.json()
    assert response.status == 400, body
    assert response.content_type == "application/json"
    assert body == {
        "success": False,
        "message": body["message"],
        "code": "INVALID_PARAMS",
        "request_id": response.headers["X-Request-ID"],
    }
    assert body["message"] and "Traceback" not in body["message"]


async def test_each_account_sees_only_its_own_records(make_client):
    client = await make_client(**NO_PHONE_LIMITS)
    _, other = await add_account(client, "other", balance_milli=10_000)
    mine = {(await send(client, phone))["data"]["message_id"] for phone in numbers(3)}
    theirs = {
        (await send(client, phone, headers=other))["data"]["message_id"] for phone in numbers(2, start=10)
    }
    demo = await records(client)
    assert demo["total"] == 3 and {r["message_id"] for r in demo["records"]} == mine
    seen = await records(client, headers=other, per_page=100)
    assert seen["total"] == 2 and {r["message_id"] for r in seen["records"]} == theirs
    filtered = await records(client, headers=other, status="success", start_time="2000-01-01 00:00:00")
    assert filtered["total"] == 2
    assert (await records(client, headers=other, page=2, per_page=1))["records"][0]["message_id"] in theirs


async def test_each_account_numbers_its_own_records_from_one(make_client):
    """The ids an account sees are 1..n of its own: nothing about how much others sent."""
    client = await make_client(**NO_PHONE_LIMITS)
    _, other = await add_account(client, "other", balance_milli=10_000)
    await send(client, numbers(1)[0])
    await batch(client, numbers(2, start=10), headers=other)
    await send(client, numbers(1, start=1)[0])
    await send(client, numbers(1, start=20)[0], headers=other)
    await batch(client, numbers(2, start=2))
    demo = (await records(client))["records"]
    theirs = (await records(client, headers=other))["records"]
    assert sorted(r["id"] for r in demo) == [1, 2, 3, 4]
    assert sorted(r["id"] for r in theirs) == [1, 2, 3]


async def test_records_carry_the_contract_fields_and_masked_phones_only(make_client):
    client = await make_client(**FLAKY, **NO_PHONE_LIMITS)
    sent = await send(client, "13912345678")
    await send(client, "+14155550123")
    refused = await send(client, "008613987654321", provider="flaky")
    assert refused["success"] is False
    response = await client.get("/api/sms/records", headers=DEMO_HEADERS)
    text = await response.text()
    for full in ("13912345678", "4155550123", "13987654321"):
        assert full not in text
    failed, international, success = (await response.json())["data"]["records"]
    common = {
        "id",
        "message_id",
        "phone",
        "template_id",
        "provider",
        "status",
        "created_at",
        "updated_at",
        "price",
        "segments",
        "no_receipt",
    }
    assert set(success) == common and set(international) == common
    assert (success["segments"], success["no_receipt"]) == (1, False)  # no text configured: one
    assert set(failed) == common | {"error"}
    assert success["message_id"] == sent["data"]["message_id"]
    assert (success["phone"], success["template_id"], success["provider"], success["status"]) == (
        "139****5678",
        "123456",
        "mock",
        "success",
    )
    assert isinstance(success["id"], int)
    assert "****" in international["phone"] and international["phone"].endswith("0123")
    assert failed["phone"] == "139****4321" and failed["provider"] == "flaky"
    assert failed["status"] == "failed" and failed["error"]
    # Yuan actually charged: the mock's price, 0 for the refused (refunded) one.
    assert (success["price"], international["price"], failed["price"]) == (0.05, 0.05, 0)
