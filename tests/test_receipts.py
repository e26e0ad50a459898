"""Delivery receipts end to end: sends through signature-checking fakes, then the carriers' own
status-report pushes to ``/callbacks/{backend}`` over real HTTP; and the store's rules directly
(idempotent, a receipt that beats settle, no refund for a failed delivery).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from gateway.carriers.base import MalformedReceipts
from gateway.keys import CONFIG, STORE
from gateway.store.records import ReceiptUpdate
from gateway.store.sqlite.receipts import EARLY_RECEIPT_TTL_MS
from gateway.store.sqlite.store import SQLiteStore
from plugins.aliyun.receipts import aliyun_receipts
from plugins.tencent.receipts import tencent_receipts
from tests.conftest import SHARED_SECRET, add_account
from tests.fakes import aliyun as fake_aliyun
from tests.fakes import backend_config
from tests.fakes import tencent as fake_tencent

TOKEN = "cb-tencent-7Q2x9k"
ALI_TOKEN = "cb-aliyun-4Hs81p"
PHONES = ["13800138001", "13900139002", "13700137003"]
TEMPLATE = {"template_id": "123456", "params": {"code": "1234", "time": "5"}}
TENCENT_OK = {"result": 0, "errmsg": "OK"}
ALIYUN_OK = {"code": 0, "msg": "接收成功"}
PRICE = {"tencent": 45, "aliyun": 60}  # milli-yuan
START = 10_000


@pytest.fixture
async def upstreams(aiohttp_server) -> dict[str, Any]:
    tencent, aliyun = fake_tencent.TencentUpstream(), fake_aliyun.AliyunUpstream()
    tencent_app = fake_tencent.create_app(tencent)
    hook: dict[str, Any] = {}
    tencent_app.middlewares.append(_push_before_answering(hook))
    return {
        "tencent": tencent,
        "aliyun": aliyun,
        "hook": hook,
        "tencent_url": str((await aiohttp_server(tencent_app)).make_url("/")),
        "aliyun_url": str((await aiohttp_server(fake_aliyun.create_app(aliyun))).make_url("/")),
    }


def _push_before_answering(hook: dict[str, Any]) -> Any:
    """When ``hook["url"]`` is set, the fake pushes a receipt for each accepted number *before*
    answering SendSms: the receipt reaches the gateway before it can settle the send."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if "url" in hook:
            statuses = orjson.loads(response.body)["Response"].get("SendStatusSet", [])
            reports = [
                tencent_report(s["PhoneNumber"], s["SerialNo"], delivered=hook["delivered"])
                for s in statuses
                if s["Code"] == "Ok"
            ]
            async with aiohttp.ClientSession() as session, session.post(hook["url"], json=reports) as pushed:
                hook["answer"] = (pushed.status, await pushed.json())
        return response

    return middleware


def backends(up: dict[str, Any], **overrides: dict[str, Any]) -> dict[str, Any]:
    receipts = {"timeout": 2, "retries": 0, "receipts": True}
    tencent = backend_config(
        "tencent", up["tencent_url"], fake_tencent.CREDENTIALS, price=0.045, callback_token=TOKEN, **receipts
    )
    aliyun = backend_config(
        "aliyun", up["aliyun_url"], fake_aliyun.CREDENTIALS, price=0.06, callback_token=ALI_TOKEN, **receipts
    )
    return {
        "providers": {
            "default": "tencent",
            "failover": [],
            "backends": {
                "tencent": {**tencent, **overrides.get("tencent", {})},
                "aliyun": {**aliyun, **overrides.get("aliyun", {})},
                "mock": {"plugin": "mock", "price": 0.05, **overrides.get("mock", {})},
            },
        },
        "templates": {"123456": {"params": ["code", "time"], "ids": {"aliyun": "SMS_123456789"}}},
        "server": {"secret_key": SHARED_SECRET},  # receipts find their records by the number's keyed hash
    }


@pytest.fixture
async def gateway(make_client, upstreams) -> tuple[Any, dict[str, str]]:
    client = await make_client(**backends(upstreams))
    _, headers = await add_account(client, "team", balance_milli=START)
    return client, headers


# -- helpers ---------------------------------------------------------------------------------------


def tencent_report(phone: str, sid: str, *, delivered: bool = True, code: str = "MK:0001") -> dict:
    national = phone.removeprefix("+86")
    return {
        "user_receive_time": "2024-05-01 10:00:03",
        "nationcode": "86",
        "mobile": national,
        "report_status": "SUCCESS" if delivered else "FAIL",
        "errmsg": "DELIVRD" if delivered else code,
        "description": "用户短信送达成功" if delivered else "空号",
        "sid": sid,
    }


def aliyun_report(phone: str, biz_id: str, *, delivered: bool = True) -> dict:
    return {
        "phone_number": phone.removeprefix("+86"),
        "send_time": "2024-05-01 10:00:00",
        "report_time": "2024-05-01 10:00:04",
        "success": delivered,
        "err_code": "DELIVERED" if delivered else "UNDELIV",
        "err_msg": "用户接收成功" if delivered else "用户关机 13800138001",
        "sms_size": "1",
        "biz_id": biz_id,
        "out_id": "",
    }


async def send(client, headers, phones: list[str], provider: str = "tencent") -> dict[str, str]:
    """Batch-send; return phone -> message_id."""
    response = await client.post(
        "/api/sms/batch-send", headers=headers, json={"phones": phones, "provider": provider, **TEMPLATE}
    )
    body = await response.json()
    assert response.status == 200 and body["success"], body
    masked = {r["phone"]: r["message_id"] for r in body["data"]["results"]}
    return {phone: masked[f"{phone[:3]}****{phone[-4:]}"] for phone in phones}


def carrier_ids(client) -> dict[str, str]:
    """message_id -> carrier_id, read from the database file as the gateway wrote it."""
    db = sqlite3.connect(client.app[CONFIG].store.path)
    try:
        return dict(db.execute("SELECT message_id, carrier_id FROM records"))
    finally:
        db.close()


async def records(client, headers) -> dict[str, dict]:
    response = await client.get("/api/sms/records", params={"per_page": "100"}, headers=headers)
    return {r["message_id"]: r for r in (await response.json())["data"]["records"]}


async def balance(client, headers) -> int:
    """Exact milli-yuan (the API shows yuan rounded down to fen)."""
    return (await client.app[STORE].account_by_key(headers["X-API-Key"])).balance_milli


async def push(client, backend: str, body: Any, token: str | None = TOKEN) -> aiohttp.ClientResponse:
    params = {"token": token} if token is not None else {}
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(
        f"/callbacks/{backend}", params=params, data=data, headers={"Content-Type": "application/json"}
    )


# -- Tencent ---------------------------------------------------------------------------------------


async def test_a_send_waiting_for_its_receipt_is_reported_pending(gateway):
    client, headers = gateway
    response = await client.post(
        "/api/sms/send", headers=headers, json={"phone": PHONES[0], "provider": "tencent", **TEMPLATE}
    )
    body = await response.json()
    assert response.status == 200 and body["success"] is True
    assert body["data"]["status"] == "pending"


async def test_tencent_receipts_finalise_pending_records_without_refund(gateway):
    client, headers = gateway
    sent = await send(client, headers, PHONES)
    before = await records(client, headers)
    assert {r["status"] for r in before.values()} == {"pending"}
    assert await balance(client, headers) == START - 3 * PRICE["tencent"]
    ids = carrier_ids(client)

    delivered, undelivered, unreported = (sent[p] for p in PHONES)
    response = await push(
        client,
        "tencent",
        [
            tencent_report(PHONES[0], ids[delivered]),
            tencent_report(PHONES[1], ids[undelivered], delivered=False),
        ],
    )
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == TENCENT_OK

    after = await records(client, headers)
    assert after[delivered]["status"] == "success" and "error" not in after[delivered]
    assert after[undelivered]["status"] == "failed"
    assert after[undelivered]["error"] == "MK:0001: 空号"
    assert after[unreported]["status"] == "pending"
    # The carrier charged for the attempt: an undelivered message is not refunded, and its record
    # shows that price, so the tenant can reconcile it.
    assert await balance(client, headers) == START - 3 * PRICE["tencent"]
    assert {r["price"] for r in after.values()} == {PRICE["tencent"] / 1000}


async def test_duplicate_and_contradicting_pushes_change_nothing(gateway):
    client, headers = gateway
    sent = await send(client, headers, PHONES[:2])
    ids = carrier_ids(client)
    reports = [tencent_report(p, ids[sent[p]], delivered=i == 0) for i, p in enumerate(PHONES[:2])]
    assert (await push(client, "tencent", reports)).status == 200
    first = await records(client, headers)

    again = await push(client, "tencent", reports)
    assert again.status == 200 and await again.json() == TENCENT_OK  # taken, so no re-push
    flipped = [tencent_report(p, ids[sent[p]], delivered=i == 1) for i, p in enumerate(PHONES[:2])]
    assert (await push(client, "tencent", flipped)).status == 200
    assert await records(client, headers) == first  # the first final word stands, updated_at too


async def test_a_receipt_that_beats_settle_is_applied_when_the_send_settles(gateway, upstreams):
    client, headers = gateway
    hook = upstreams["hook"]
    hook.update(url=str(client.make_url("/callbacks/tencent").with_query(token=TOKEN)), delivered=False)
    sent = await send(client, headers, PHONES[:2])
    assert hook["answer"] == (200, TENCENT_OK)  # answered while the send was still in flight
    after = await records(client, headers)
    assert [after[sent[p]]["status"] for p in PHONES[:2]] == ["failed", "failed"]
    assert after[sent[PHONES[0]]]["error"] == "MK:0001: 空号"
    db = sqlite3.connect(client.app[CONFIG].store.path)
    try:
        assert db.execute("SELECT COUNT(*) FROM early_receipts").fetchone() == (0,)
    finally:
        db.close()


# -- Aliyun ----------------------------------------------------------------------------------------


async def test_aliyun_receipts_match_the_shared_biz_id_by_number(gateway, upstreams):
    client, headers = gateway
    sent = await send(client, headers, PHONES[:2], provider="aliyun")
    assert len(upstreams["aliyun"].requests) == 1  # one call for both numbers
    ids = carrier_ids(client)
    biz_id = ids[sent[PHONES[0]]]
    assert ids[sent[PHONES[1]]] == biz_id

    response = await push(client, "aliyun", [aliyun_report(PHONES[0], biz_id)], token=ALI_TOKEN)
    assert response.status == 200
    assert orjson.loads(await response.read()) == ALIYUN_OK
    after = await records(client, headers)
    assert after[sent[PHONES[0]]]["status"] == "success"
    assert after[sent[PHONES[1]]]["status"] == "pending"  # same BizId, other number: untouched

    failed = aliyun_report(PHONES[1], biz_id, delivered=False)
    assert (await push(client, "aliyun", [failed, failed], token=ALI_TOKEN)).status == 200
    after = await records(client, headers)
    assert after[sent[PHONES[1]]]["status"] == "failed"
    assert after[sent[PHONES[1]]]["error"] == "UNDELIV: 用户关机 138****8001"  # scrubbed
    assert await balance(client, headers) == START - 2 * PRICE["aliyun"]


async def test_receipts_cannot_reach_beyond_the_ids_the_carrier_gave(gateway, upstreams):
    client, headers = gateway
    _, other_headers = await add_account(client, "other", balance_milli=START)
    by_tencent = await send(client, headers, PHONES[:1])
    by_aliyun = await send(client, other_headers, PHONES[1:2], provider="aliyun")
    ids = carrier_ids(client)
    serial, biz_id = ids[by_tencent[PHONES[0]]], ids[by_aliyun[PHONES[1]]]

    # Another backend's ids, through the wrong endpoint (each with its own valid token) ...
    assert (await push(client, "aliyun", [aliyun_report(PHONES[0], serial)], token=ALI_TOKEN)).status == 200
    assert (await push(client, "tencent", [tencent_report(PHONES[1], biz_id)])).status == 200
    # ... and the right id with a number that was not in that send.
    assert (await push(client, "aliyun", [aliyun_report(PHONES[2], biz_id)], token=ALI_TOKEN)).status == 200
    assert (await records(client, headers))[by_tencent[PHONES[0]]]["status"] == "pending"
    assert (await records(client, other_headers))[by_aliyun[PHONES[1]]]["status"] == "pending"


# -- refusals --------------------------------------------------------------------------------------


async def test_a_wrong_or_missing_token_is_403_and_changes_nothing(gateway, caplog):
    client, headers = gateway
    sent = await send(client, headers, PHONES[:1])
    report = [tencent_report(PHONES[0], carrier_ids(client)[sent[PHONES[0]]])]
    caplog.set_level(logging.DEBUG)
    for token in ("wrong-token-guess", None, "", ALI_TOKEN, TOKEN + "x", "令牌"):
        response = await push(client, "tencent", report, token=token)
        body = await response.json()
        assert response.status == 403, token
        assert body["success"] is False and body["code"] == "FORBIDDEN" and body["request_id"]
    assert (await records(client, headers))[sent[PHONES[0]]]["status"] == "pending"
    assert "wrong-token-guess" not in caplog.text and TOKEN not in caplog.text


async def test_a_stream_of_wrong_tokens_is_not_a_stream_of_log_lines(gateway, caplog):
    client, _ = gateway
    caplog.set_level(logging.INFO)
    for n in range(50):
        assert (await push(client, "tencent", [], token=f"guess-{n}")).status == 403
    refusals = [r for r in caplog.records if "wrong or missing token" in r.getMessage()]
    assert len(refusals) <= 1  # one line a minute at most, counting those it left out


@pytest.mark.parametrize("path", ["/callbacks/nowhere", "/callbacks/mock"])
async def test_unknown_backends_and_carriers_without_receipts_are_404(gateway, path):
    client, _ = gateway
    response = await client.post(path, params={"token": TOKEN}, json=[])
    assert response.status == 404
    assert (await response.json())["code"] == "NOT_FOUND"


async def test_a_carrier_without_receipts_is_404_even_with_a_token(make_client, upstreams):
    client = await make_client(**backends(upstreams, mock={"callback_token": TOKEN}))
    response = await push(client, "mock", [])
    assert response.status == 404 and (await response.json())["code"] == "NOT_FOUND"


async def test_an_unconfigured_token_disables_the_endpoint(make_client, upstreams):
    client = await make_client(**backends(upstreams, tencent={"callback_token": ""}))
    for token in ("", None, "anything"):
        response = await push(client, "tencent", [], token=token)
        assert response.status == 404 and (await response.json())["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"sid": "x"}',
        b"[1, 2]",
        b'[{"mobile": "13800138001", "report_status": "SUCCESS"}]',
        b'[{"sid": "2433:1", "nationcode": "86", "mobile": "13800138001", "report_status": "MAYBE"}]',
        orjson.dumps([{"sid": "2433:1", "mobile": {"n": 1}, "report_status": "SUCCESS"}]),
    ],
)
async def test_a_malformed_push_is_400_and_changes_nothing(gateway, body):
    client, headers = gateway
    sent = await send(client, headers, PHONES[:1])
    response = await push(client, "tencent", body)
    assert response.status == 400
    assert (await response.json())["code"] == "INVALID_PARAMS"
    assert (await records(client, headers))[sent[PHONES[0]]]["status"] == "pending"


async def test_aliyun_malformed_push_is_400(gateway):
    client, _ = gateway
    bad = [{"phone_number": "13800138001", "biz_id": "1^0", "success": "perhaps"}]
    response = await push(client, "aliyun", bad, token=ALI_TOKEN)
    assert response.status == 400 and (await response.json())["code"] == "INVALID_PARAMS"


async def test_a_locked_store_is_503_so_the_carrier_pushes_again(make_client, upstreams):
    client = await make_client(store={"timeout": 0.2}, **backends(upstreams))
    _, headers = await add_account(client, "team", balance_milli=START)
    sent = await send(client, headers, PHONES[:1])
    report = [tencent_report(PHONES[0], carrier_ids(client)[sent[PHONES[0]]])]
    locked = sqlite3.connect(client.app[CONFIG].store.path, isolation_level=None)
    try:
        locked.execute("BEGIN EXCLUSIVE")
        response = await push(client, "tencent", report)
        assert response.status == 503 and (await response.json())["code"] == "UNAVAILABLE"
        locked.execute("ROLLBACK")
    finally:
        locked.close()
    assert (await push(client, "tencent", report)).status == 200  # the re-push is applied
    assert (await records(client, headers))[sent[PHONES[0]]]["status"] == "success"


# -- the store's rules (the shared ones are in test_store_contract.py, on both stores) -------------

NOW = 1_714_521_600_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(str(tmp_path / "store.db"), timeout=1.0)
    await opened.open()
    yield opened
    await opened.close()


async def test_store_keeps_unmatched_receipts_for_a_day_only(store: SQLiteStore, tmp_path: Path):
    await store.apply_receipts("aliyun", [ReceiptUpdate("old", "h", True)], NOW)
    later = NOW + EARLY_RECEIPT_TTL_MS + 1
    await store.apply_receipts("aliyun", [ReceiptUpdate("new", "h", True)], later)
    db = sqlite3.connect(tmp_path / "store.db")
    try:
        assert db.execute("SELECT carrier_id FROM early_receipts").fetchall() == [("new",)]
    finally:
        db.close()


# -- reading the carriers' bodies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "e164"),
    [
        ({"nationcode": "86", "mobile": "13800138001"}, "+8613800138001"),
        ({"nationcode": 1, "mobile": 4155550123}, "+14155550123"),  # numbers may come unquoted
        ({"mobile": "13800138001"}, "+8613800138001"),  # no nationcode: mainland
        ({"nationcode": "86", "mobile": "12345"}, None),  # not a number: dropped
    ],
)
def test_tencent_numbers_are_normalised(report: dict, e164: str | None):
    body = orjson.dumps([{"sid": "2433:1", "report_status": "FAIL", "errmsg": "UNDELIV", **report}])
    assert [r.e164 for r in tencent_receipts(body)] == ([e164] if e164 else [])


@pytest.mark.parametrize(
    ("number", "e164"),
    [
        ("13800138001", "+8613800138001"),
        ("+8613800138001", "+8613800138001"),
        ("008613800138001", "+8613800138001"),
        ("85261234567", "+85261234567"),  # abroad: country code and number, no "+"
        ("1380013", None),
    ],
)
def test_aliyun_numbers_are_normalised(number: str, e164: str | None):
    body = orjson.dumps([{"phone_number": number, "success": "true", "biz_id": "9^0"}])
    receipts = aliyun_receipts(body)
    assert [r.e164 for r in receipts] == ([e164] if e164 else [])
    assert all(r.delivered and r.code == "DELIVERED" for r in receipts)


def test_an_empty_push_is_taken():
    assert tencent_receipts(b"[]") == [] and aliyun_receipts(b"[]") == []
    with pytest.raises(MalformedReceipts):
        aliyun_receipts(b'[{"phone_number": "13800138001", "success": true}]')  # no biz_id
