"""POST /api/sms/batch-send: the contract body, all-or-nothing validation, partial failures, fan-out."""

from __future__ import annotations

import pytest

from gateway.config.model import BucketConfig
from gateway.keys import RUNTIME, STORE
from tests.conftest import add_account

RULE = "tests.carriers:RuleCarrier"
ROOMY = BucketConfig(rate=1000.0, burst=100_000)  # account limits out of the way of big batches
NO_PHONE_LIMITS = {"phone": []}
BLOCKED = "+8613900139000"


def numbers(count: int) -> list[str]:
    return [f"1380013{index:04d}" for index in range(count)]


async def rule_client(make_client, **options):
    backend = {"plugin": RULE, "price": 0.01, **options}
    return await make_client(
        providers={"default": "rule", "backends": {"rule": backend}}, ratelimit=NO_PHONE_LIMITS
    )


async def batch(client, headers, phones, **extra):
    response = await client.post(
        "/api/sms/batch-send",
        json={"phones": phones, "template_id": "123456", "params": {"code": "1234"}, **extra},
        headers=headers,
    )
    return response, await response.json()


async def balance_and_records(client, headers):
    info = await (await client.get("/api/account/info", headers=headers)).json()
    page = await (await client.get("/api/sms/records?per_page=100", headers=headers)).json()
    return info["data"], page["data"]


async def test_seed_example_gets_the_contract_body(make_client):
    client = await make_client(ratelimit=NO_PHONE_LIMITS)
    _, headers = await add_account(client, "bulk", balance_milli=10_000, ratelimit=ROOMY)
    response, body = await batch(client, headers, ["13800138000", "13900139000"])
    assert response.status == 200
    assert set(body) == {"success", "message", "data"}
    assert body["success"] is True
    assert body["message"] == "批量发送完成:成功 2 条,失败 0 条"
    data = body["data"]
    assert (data["total"], data["success_count"], data["failed_count"]) == (2, 2, 0)
    assert [r["phone"] for r in data["results"]] == ["138****8000", "139****9000"]
    for result in data["results"]:
        assert result["success"] is True
        assert len(result["message_id"]) >= 16
    assert "13800138000" not in await response.text()
    account, records = await balance_and_records(client, headers)
    assert account["balance"] == 9.9  # two messages at the mock's 0.05
    assert {r["message_id"] for r in records["records"]} == {r["message_id"] for r in data["results"]}
    assert {r["status"] for r in records["records"]} == {"success"}


async def test_duplicates_in_any_form_are_sent_and_charged_once(make_client):
    client = await rule_client(make_client)
    _, headers = await add_account(client, "bulk", balance_milli=1_000, ratelimit=ROOMY)
    forms = ["13800138000", "+8613800138000", "008613800138000", "138-0013-8000", "13900139000"]
    response, body = await batch(client, headers, forms)
    assert response.status == 200, body
    assert body["data"]["total"] == 2
    assert [r["phone"] for r in body["data"]["results"]] == ["138****8000", "139****9000"]
    assert client.app[RUNTIME].current.carriers["rule"].calls == [["+8613800138000", "+8613900139000"]]
    account, records = await balance_and_records(client, headers)
    assert account["balance"] == 0.98
    assert records["total"] == 2


@pytest.mark.parametrize("phones", [[], numbers(101), "13800138000", None])
async def test_wrong_number_of_phones_is_400(make_client, phones):
    client = await rule_client(make_client)
    _, headers = await add_account(client, "bulk", balance_milli=10_000, ratelimit=ROOMY)
    body = {"template_id": "123456"} if phones is None else {"phones": phones, "template_id": "1"}
    response = await client.post("/api/sms/batch-send", json=body, headers=headers)
    payload = await response.json()
    assert response.status == 400
    assert payload["code"] == "INVALID_PARAMS"
    assert "phones" in payload["message"]
    assert client.app[RUNTIME].current.carriers["rule"].calls == []


async def test_exactly_100_phones_is_accepted(make_client):
    client = await rule_client(make_client)
    _, headers = await add_account(client, "bulk", balance_milli=10_000, ratelimit=ROOMY)
    response, body = await batch(client, headers, numbers(100))
    assert response.status == 200, body
    assert body["data"]["success_count"] == 100


async def test_one_invalid_entry_rejects_the_whole_batch_naming_it_masked(make_client):
    client = await rule_client(make_client)
    _, headers = await add_account(client, "bulk", balance_milli=10_000, ratelimit=ROOMY)
    bad = ["010-87654321", "1390013900x", "12345678901"]
    response, body = await batch(client, headers, ["13800138000", *bad, 13700137000])
    text = await response.text()
    assert response.status == 400
    assert body["code"] == "INVALID_PARAMS"
    for masked in ("010****4321", "139****3900", "123****8901"):
        assert masked in body["message"]
    for raw in (*bad, "13700137000", "13800138000", "87654321", "1390013900"):
        assert raw not in text
    assert client.app[RUNTIME].current.carriers["rule"].calls == []
    account, records = await balance_and_records(client, headers)
    assert account["balance"] == 10.0
    assert records["total"] == 0


async def test_partial_failure_is_200_refunds_only_the_refused_and_records_both(make_client):
    client = await rule_client(make_client, refuse=[BLOCKED])
    _, headers = await add_account(client, "bulk", balance_milli=1_000, ratelimit=ROOMY)
    response, body = await batch(client, headers, ["13800138000", "13900139000", "13700137000"])
    text = await response.text()
    assert response.status == 200
    assert body["success"] is False
    assert body["message"] == "批量发送完成:成功 2 条,失败 1 条"
    data = body["data"]
    assert (data["total"], data["success_count"], data["failed_count"]) == (3, 2, 1)
    accepted, refused, also_accepted = data["results"]
    assert accepted["success"] is True and also_accepted["success"] is True
    assert refused["phone"] == "139****9000"
    assert refused["success"] is False
    assert "RULE_REFUSED" in refused["message"]
    assert "13900139000" not in text  # the carrier quoted the number in full
    account, records = await balance_and_records(client, headers)
    assert account["balance"] == 0.98  # 1.00 - 3 x 0.01 + 1 refund
    assert account["total_sent"] == 2
    status = {r["phone"]: r["status"] for r in records["records"]}
    assert status == {"138****8000": "success", "139****9000": "failed", "137****7000": "success"}
    [failed] = [r for r in records["records"] if r["status"] == "failed"]
    assert "RULE_REFUSED" in failed["error"] and "13900139000" not in failed["error"]
    assert refused["message_id"] == failed["message_id"]  # a refused entry names its record


async def test_every_number_refused_is_still_200_with_everything_refunded(make_client):
    client = await rule_client(make_client, refuse=["+8613800138000", BLOCKED])
    _, headers = await add_account(client, "bulk", balance_milli=1_000, ratelimit=ROOMY)
    response, body = await batch(client, headers, ["13800138000", "13900139000"])
    assert response.status == 200
    assert body["success"] is False
    assert body["message"] == "批量发送完成:成功 0 条,失败 2 条"
    account, records = await balance_and_records(client, headers)
    assert account["balance"] == 1.0
    assert {r["status"] for r in records["records"]} == {"failed"}


async def test_batch_goes_out_in_max_batch_calls_all_in_flight_together(make_client):
    # Each call waits until all three are in flight: sequential calls would fail NOT_CONCURRENT.
    client = await rule_client(make_client, rendezvous=3)
    _, headers = await add_account(client, "bulk", balance_milli=10_000, ratelimit=ROOMY)
    phones = numbers(25)
    response, body = await batch(client, headers, phones)
    assert response.status == 200, body
    assert body["data"]["success_count"] == 25, body["data"]["results"][0]
    carrier = client.app[RUNTIME].current.carriers["rule"]
    assert sorted(len(call) for call in carrier.calls) == [5, 10, 10]
    assert carrier.peak_in_flight == 3
    sent = sorted(number for call in carrier.calls for number in call)
    assert sent == sorted("+86" + phone for phone in phones)


async def test_unverified_account_batch_is_403_and_charges_nothing(make_client):
    client = await rule_client(make_client)
    _, headers = await add_account(
        client, "new", balance_milli=1_000, ratelimit=ROOMY, verification_status="pending"
    )
    response, body = await batch(client, headers, ["13800138000"])
    assert response.status == 403
    assert body["code"] == "UNVERIFIED"
    account, records = await balance_and_records(client, headers)
    assert account["balance"] == 1.0
    assert records["total"] == 0
    assert client.app[RUNTIME].current.carriers["rule"].calls == []


async def test_balance_short_of_the_whole_batch_is_403_and_charges_nothing(make_client):
    client = await rule_client(make_client)
    poor, headers = await add_account(client, "poor", balance_milli=29, ratelimit=ROOMY)  # 3 cost 30
    response, body = await batch(client, headers, ["13800138000", "13900139000", "13700137000"])
    assert response.status == 403
    assert body["code"] == "INSUFFICIENT_BALANCE"
    assert body["message"] == "发送失败:余额不足"
    _, records = await balance_and_records(client, headers)
    assert (await client.app[STORE].account_by_key(poor.api_key)).balance_milli == 29
    assert records["total"] == 0
    assert client.app[RUNTIME].current.carriers["rule"].calls == []
    affordable, _ = await batch(client, headers, ["13800138000", "13900139000"])
    assert affordable.status == 200


async def test_a_batch_refused_for_balance_leaves_the_per_phone_windows_untouched(make_client):
    # The shipped window: 1 message per number per minute. Nothing was sent, so nothing is used up.
    client = await make_client(ratelimit={"phone": [{"limit": 1, "seconds": 60}]})
    account, headers = await add_account(client, "poor", balance_milli=50, ratelimit=ROOMY)
    refused, _ = await batch(client, headers, ["13800138000", "13900139000"])  # costs 0.10
    assert refused.status == 403
    response, body = await batch(client, headers, ["13800138000"])
    assert response.status == 200, body
    assert body["data"]["success_count"] == 1, body
    assert (await client.app[STORE].account_by_key(account.api_key)).balance_milli == 0


async def test_a_bad_entry_is_named_by_its_place_and_a_wrong_type_by_its_type(make_client):
    client = await rule_client(make_client)
    _, headers = await add_account(client, "bulk", balance_milli=10_000, ratelimit=ROOMY)
    response, body = await batch(client, headers, ["13800138000", "12345678901", 13700137000, None])
    assert response.status == 400
    message = body["message"]
    assert "第 2 个 123****8901" in message
    assert "第 3 个 应为字符串,收到数字" in message and "第 4 个 应为字符串,收到 null" in message
    assert "13700137000" not in message
