"""Records whose delivery receipt never came, end to end: sent through the signature-checking fakes
with receipts on, no push ever made; the gateway's status pull asks the carriers (Tencent
``PullSmsSendStatusByPhoneNumber``, Aliyun ``QuerySendDetails``) once ``receipts.pull_after`` has
passed, not every round after, and gives up after ``receipts.give_up_after``; one puller of a fleet
does a carrier's round. On SQLite and on Redis.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

import pytest

from gateway.billing.pull import StatusPuller
from gateway.keys import CLOCK, CONFIG, METRICS, RUNTIME, STORE
from tests.conftest import SHARED_SECRET, add_account
from tests.fakes import Report, backend_config
from tests.fakes import aliyun as fake_aliyun
from tests.fakes import tencent as fake_tencent

PULL_AFTER, GIVE_UP_AFTER = 600, 3 * 86400
PHONES = ["13800138001", "13900139002", "13700137003"]
BODY = {"template_id": "123456", "params": {"code": "1234", "time": "5"}}
START = 100_000
PRICE = {"tencent": 45, "aliyun": 60}
ACTIONS = {
    "tencent": ("X-TC-Action", "PullSmsSendStatusByPhoneNumber"),
    "aliyun": ("x-acs-action", "QuerySendDetails"),
}


class Clock:
    """The gateway's clock, moved by the test (the fakes keep real time: sends happen now)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fakes(aiohttp_server) -> dict[str, Any]:
    tencent, aliyun = fake_tencent.TencentUpstream(), fake_aliyun.AliyunUpstream()
    return {
        "tencent": tencent,
        "aliyun": aliyun,
        "tencent_url": str((await aiohttp_server(fake_tencent.create_app(tencent))).make_url("/")),
        "aliyun_url": str((await aiohttp_server(fake_aliyun.create_app(aliyun))).make_url("/")),
    }


def _config(fakes: dict[str, Any], store_backend: dict[str, Any], **receipts: Any) -> dict[str, Any]:
    common = {"timeout": 2, "retries": 0, "receipts": True}
    return {
        **store_backend,
        "providers": {
            "default": "tencent",
            "backends": {
                "tencent": backend_config(
                    "tencent", fakes["tencent_url"], fake_tencent.CREDENTIALS, price=0.045, **common
                ),
                "aliyun": backend_config(
                    "aliyun", fakes["aliyun_url"], fake_aliyun.CREDENTIALS, price=0.06, **common
                ),
            },
        },
        "templates": {"123456": {"params": ["code", "time"], "ids": {"aliyun": "SMS_123456789"}}},
        "server": {"secret_key": SHARED_SECRET},
        "receipts": {"pull_after": PULL_AFTER, "give_up_after": GIVE_UP_AFTER, **receipts},
    }


async def _gateway(make_client, fakes, store_backend, **receipts: Any):
    """A gateway on a moved clock, and an account."""
    clock = Clock()
    client = await make_client(clock=clock, **_config(fakes, store_backend, **receipts))
    _, headers = await add_account(client, "team", balance_milli=START)
    return client, headers, clock


@pytest.fixture
async def gateway(make_client, fakes, store_backend):
    """``await gateway(**receipts)``: ``_gateway`` on each store."""

    async def build(**receipts: Any):
        return await _gateway(make_client, fakes, store_backend, **receipts)

    return build


def _puller(client) -> StatusPuller:
    app = client.app
    return StatusPuller(app[STORE], app[RUNTIME], app[METRICS], app[CLOCK])


async def _send(client, headers, provider: str, phones: list[str]) -> dict[str, str]:
    response = await client.post(
        "/api/sms/batch-send", headers=headers, json={"phones": phones, "provider": provider, **BODY}
    )
    body = await response.json()
    assert response.status == 200 and body["success"], body
    results = body["data"]["results"]
    assert all(r["success"] for r in results), results
    return {phone: r["message_id"] for phone, r in zip(phones, results, strict=True)}


async def _records(client, headers) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/sms/records", params={"per_page": "100"}, headers=headers)
    return {r["message_id"]: r for r in (await response.json())["data"]["records"]}


async def _balance(client, headers) -> int:
    return (await client.app[STORE].account_by_key(headers["X-API-Key"])).balance_milli


def _asked(fake, provider: str) -> int:
    header, action = ACTIONS[provider]
    return sum(1 for r in fake.requests if r.headers.get(header) == action)


async def _metric(client, provider: str, result: str) -> float:
    text = await (await client.get("/metrics")).text()
    line = f'smsedge_status_pull_records_total{{provider="{provider}",result="{result}"}} '
    return sum(float(row.split(" ")[-1]) for row in text.splitlines() if row.startswith(line))


@pytest.mark.parametrize("provider", ["tencent", "aliyun"])
async def test_a_record_whose_receipt_never_came_is_asked_of_the_carrier_and_finalised(
    gateway, fakes, provider
):
    client, headers, clock = await gateway()
    fake = fakes[provider]
    sent = await _send(client, headers, provider, PHONES)
    delivered, undelivered, unanswered = (sent[p] for p in PHONES)
    for message in fake.sent:  # what the handsets' operators said; the carrier never pushed it
        if message.e164.endswith(PHONES[0][-8:]):
            fake.reports[(message.carrier_id, message.e164)] = Report(True)
        elif message.e164.endswith(PHONES[1][-8:]):
            fake.reports[(message.carrier_id, message.e164)] = Report(False, "MK:0005")
    puller = _puller(client)
    clock.now += PULL_AFTER - 5
    await puller.round()
    assert _asked(fake, provider) == 0  # not due yet
    clock.now += 10
    await puller.round()
    assert _asked(fake, provider) >= 1
    after = await _records(client, headers)
    assert (after[delivered]["status"], after[undelivered]["status"]) == ("success", "failed")
    assert after[undelivered]["error"].startswith("MK:0005")
    assert after[unanswered]["status"] == "pending" and after[unanswered]["no_receipt"] is False
    assert await _balance(client, headers) == START - 3 * PRICE[provider]  # no refund for a delivery report
    assert await _metric(client, provider, "answered") == 2
    assert await _metric(client, provider, "unanswered") == 1


async def test_an_unanswered_record_is_asked_again_later_not_every_round(gateway, fakes):
    client, headers, clock = await gateway()
    await _send(client, headers, "tencent", PHONES[:1])
    puller = _puller(client)
    clock.now += PULL_AFTER + 1
    await puller.round()
    assert _asked(fakes["tencent"], "tencent") == 1
    for _ in range(5):  # rounds every 30 s: the record waits half its age (5 minutes) first
        clock.now += 30
        await puller.round()
    assert _asked(fakes["tencent"], "tencent") == 1
    clock.now += 300
    await puller.round()
    assert _asked(fakes["tencent"], "tencent") == 2


async def test_a_failing_status_query_leaves_the_records_to_be_asked_again(gateway, fakes):
    client, headers, clock = await gateway()
    sent = await _send(client, headers, "tencent", PHONES[:2])
    fakes["tencent"].error_code = "InternalError.Timeout"  # every call fails as a whole
    puller = _puller(client)
    clock.now += PULL_AFTER + 1
    await puller.round()
    assert await _metric(client, "tencent", "error") == 2
    assert await _metric(client, "tencent", "unanswered") == 0
    fakes["tencent"].error_code = None
    for message in fakes["tencent"].sent:
        fakes["tencent"].reports[(message.carrier_id, message.e164)] = Report(True)
    clock.now += PULL_AFTER
    await puller.round()
    after = await _records(client, headers)
    assert [after[message_id]["status"] for message_id in sent.values()] == ["success", "success"]


@pytest.mark.parametrize("refund", [False, True])
async def test_a_record_the_carrier_never_answers_for_is_marked_after_give_up_after(gateway, fakes, refund):
    client, headers, clock = await gateway(refund_unknown=refund)
    sent = await _send(client, headers, "aliyun", PHONES[:2])
    puller = _puller(client)
    clock.now += PULL_AFTER + 1
    await puller.round()
    asked = _asked(fakes["aliyun"], "aliyun")
    assert asked == 2
    clock.now += GIVE_UP_AFTER
    await puller.round()
    assert _asked(fakes["aliyun"], "aliyun") == asked  # given up on: not asked again
    after = await _records(client, headers)
    for message_id in sent.values():
        record = after[message_id]
        assert record["no_receipt"] is True
        if refund:
            assert (record["status"], record["price"]) == ("failed", 0)
            assert record["error"].startswith("NO_RECEIPT")
        else:  # the carrier probably billed it: the record keeps its status and its price
            assert (record["status"], record["price"]) == ("pending", PRICE["aliyun"] / 1000)
    assert await _balance(client, headers) == START - (0 if refund else 2 * PRICE["aliyun"])
    assert await _metric(client, "aliyun", "given_up") == 2
    clock.now += GIVE_UP_AFTER
    await puller.round()  # nothing left to give up on: refunded once only
    assert await _balance(client, headers) == START - (0 if refund else 2 * PRICE["aliyun"])


async def test_of_two_pullers_at_once_one_does_a_carriers_round(gateway, fakes):
    client, headers, clock = await gateway()
    await _send(client, headers, "tencent", PHONES)
    first, second = _puller(client), _puller(client)  # two workers of a fleet
    clock.now += PULL_AFTER + 120  # past the lease the app's own puller took at start
    await asyncio.gather(first.round(), second.round())
    assert _asked(fakes["tencent"], "tencent") == 3  # each number once, not once per worker
    clock.now += 400  # due again (half its age later), and the lease of the one that asked has lapsed
    await second.round()
    await first.round()
    assert _asked(fakes["tencent"], "tencent") == 6


async def test_the_number_is_kept_sealed_while_waiting_and_dropped_once_final(make_client, fakes):
    # Reads the SQLite file; the Redis side is in tests/test_store_billing.py.
    client, headers, clock = await _gateway(make_client, fakes, {})
    await _send(client, headers, "tencent", PHONES[:1])
    path = client.app[CONFIG].store.path
    db = sqlite3.connect(path)
    try:
        [(sealed, pull_at)] = db.execute("SELECT sealed_phone, pull_at FROM records").fetchall()
        assert sealed and PHONES[0] not in sealed and pull_at is not None
        for message in fakes["tencent"].sent:
            fakes["tencent"].reports[(message.carrier_id, message.e164)] = Report(True)
        clock.now += PULL_AFTER + 1
        await _puller(client).round()
        assert db.execute("SELECT status, sealed_phone, pull_at FROM records").fetchall() == [
            ("success", None, None)
        ]
    finally:
        db.close()
    dumped = json.dumps(await _records(client, headers))
    assert PHONES[0] not in dumped
