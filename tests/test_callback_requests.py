"""A send's own ``callback_url`` (send and batch-send), on both stores over real HTTP: checked
against the sender's prefixes (400 ``INVALID_PARAMS`` with the reason, nothing sent or charged),
and kept on each record: the request's, else the account's at send time, else none."""

from __future__ import annotations

import pytest

from gateway.keys import STORE
from gateway.store.records import RecordQuery
from tests.conftest import SEND_BODY, add_account

HOOKS = "https://hooks.example.com/sms/"
OTHER_PHONE = "13900139000"


@pytest.fixture
async def gateway(make_client, store_backend):
    return await make_client(ratelimit={"phone": []}, **store_backend)


async def hooked(client, name: str = "hooks", url: str | None = HOOKS + "account"):
    return await add_account(client, name, balance_milli=10_000, callback_prefixes=(HOOKS,), callback_url=url)


async def kept_url(client, account, message_id: str) -> str | None:
    [record] = await client.app[STORE].find_records(account.id, [message_id])
    return record.callback_url


async def test_a_sends_own_url_is_kept_on_its_record(gateway):
    account, headers = await hooked(gateway)
    response = await gateway.post(
        "/api/sms/send", json={**SEND_BODY, "callback_url": HOOKS + "this-send"}, headers=headers
    )
    assert response.status == 200, await response.text()
    message_id = (await response.json())["data"]["message_id"]
    assert await kept_url(gateway, account, message_id) == HOOKS + "this-send"


async def test_without_one_the_accounts_url_is_kept_or_none(gateway):
    account, headers = await hooked(gateway)
    sent = await (await gateway.post("/api/sms/send", json=SEND_BODY, headers=headers)).json()
    assert await kept_url(gateway, account, sent["data"]["message_id"]) == HOOKS + "account"
    plain, plain_headers = await add_account(gateway, "plain", balance_milli=10_000)
    sent = await (await gateway.post("/api/sms/send", json=SEND_BODY, headers=plain_headers)).json()
    assert await kept_url(gateway, plain, sent["data"]["message_id"]) is None


async def test_a_batch_keeps_its_url_on_every_record(gateway):
    account, headers = await hooked(gateway)
    body = {
        "phones": [SEND_BODY["phone"], OTHER_PHONE],
        "template_id": "123456",
        "params": {"code": "1"},
        "callback_url": HOOKS + "batch",
    }
    answer = await (await gateway.post("/api/sms/batch-send", json=body, headers=headers)).json()
    assert answer["data"]["success_count"] == 2, answer
    for result in answer["data"]["results"]:
        assert await kept_url(gateway, account, result["message_id"]) == HOOKS + "batch"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://intranet.local/admin", "callback_prefixes 之一"),
        ("https://hooks.example.com.evil.net/sms/", "callback_prefixes 之一"),
        ("http://hooks.example.com/sms/", "callback_prefixes 之一"),
        ("hooks.example.com/sms/", "绝对地址"),
        (5, "callback_url"),
        ("", "callback_url"),
    ],
)
@pytest.mark.parametrize("route", ["send", "batch-send"])
async def test_a_url_outside_the_prefixes_is_400_and_sends_nothing(gateway, url, said, route):
    account, headers = await hooked(gateway)
    body = {**SEND_BODY, "callback_url": url}
    if route == "batch-send":
        body["phones"] = [body.pop("phone")]
    response = await gateway.post(f"/api/sms/{route}", json=body, headers=headers)
    answer = await response.json()
    assert (response.status, answer["code"]) == (400, "INVALID_PARAMS"), answer
    assert said in answer["message"]
    after = await gateway.app[STORE].account_by_key(account.api_key)
    assert (after.balance_milli, after.total_sent) == (10_000, 0)
    assert (await gateway.app[STORE].records(account.id, RecordQuery())).total == 0


async def test_an_account_without_prefixes_may_not_name_a_url(gateway):
    _, headers = await add_account(gateway, "bare", balance_milli=10_000)
    response = await gateway.post(
        "/api/sms/send", json={**SEND_BODY, "callback_url": HOOKS + "x"}, headers=headers
    )
    answer = await response.json()
    assert (response.status, answer["code"]) == (400, "INVALID_PARAMS")
    assert "callback_prefixes" in answer["message"]
