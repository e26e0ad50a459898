"""The carriers' own counts through their signature-checking fakes, on SQLite and on Redis: Tencent's
``Fee`` settles the send at what Tencent billed, Aliyun's ``sms_size`` re-prices the record when its
receipt comes (once, however often it is pushed), and a count other than the template text's is
logged and counted in ``smsedge_segment_mismatch_total``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from gateway.billing.segments import count_segments
from gateway.keys import STORE
from tests.conftest import SHARED_SECRET, add_account
from tests.fakes import Report, backend_config
from tests.fakes import aliyun as fake_aliyun
from tests.fakes import tencent as fake_tencent
from tests.fakes.aliyun_messages import sms_reports

TOKEN = "cb-aliyun-billing-7Q2x9k"
START = 100_000
SIGN = "【SMS Edge】"
#: Counts two segments at home: 10 for the signature, 61 for the text with its value.
TEXT = (
    "您的订单{code}已发货,预计三日内送达,请保持电话畅通。"
    "如有疑问请联系客服,感谢您的支持。本短信由系统自动发送,请勿回复。"
)
PARAMS = {"code": "1234"}


@pytest.fixture
async def gateway(make_client, aiohttp_server, store_backend) -> dict[str, Any]:
    tencent, aliyun = fake_tencent.TencentUpstream(), fake_aliyun.AliyunUpstream()
    urls = {
        name: str((await aiohttp_server(module.create_app(up))).make_url("/"))
        for name, module, up in (("tencent", fake_tencent, tencent), ("aliyun", fake_aliyun, aliyun))
    }
    common = {"timeout": 2, "retries": 0}
    client = await make_client(
        **{"server": {"secret_key": SHARED_SECRET}, **store_backend},
        providers={
            "default": "tencent",
            "backends": {
                "tencent": backend_config(
                    "tencent", urls["tencent"], fake_tencent.CREDENTIALS, price=0.045, **common
                ),
                "aliyun": backend_config(
                    "aliyun",
                    urls["aliyun"],
                    fake_aliyun.CREDENTIALS,
                    price=0.06,
                    receipts=True,
                    callback_token=TOKEN,
                    **common,
                ),
            },
        },
        templates={"T2": {"params": ["code"], "text": TEXT, "sign": SIGN, "ids": {"aliyun": "SMS_2"}}},
    )
    _, headers = await add_account(client, "team", balance_milli=START)
    return {"client": client, "headers": headers, "tencent": tencent, "aliyun": aliyun}


async def _send(gateway: dict[str, Any], provider: str) -> dict[str, Any]:
    response = await gateway["client"].post(
        "/api/sms/send",
        headers=gateway["headers"],
        json={"phone": "13800138000", "template_id": "T2", "params": PARAMS, "provider": provider},
    )
    body = await response.json()
    assert response.status == 200 and body["success"], body
    return body["data"]


async def _record(gateway: dict[str, Any], message_id: str) -> dict[str, Any]:
    response = await gateway["client"].get("/api/sms/records", headers=gateway["headers"])
    return next(r for r in (await response.json())["data"]["records"] if r["message_id"] == message_id)


async def _balance(gateway: dict[str, Any]) -> int:
    store = gateway["client"].app[STORE]
    return (await store.inner.account_by_key(gateway["headers"]["X-API-Key"])).balance_milli


async def _mismatches(gateway: dict[str, Any], provider: str) -> float:
    text = await (await gateway["client"].get("/metrics")).text()
    line = f'smsedge_segment_mismatch_total{{provider="{provider}"}} '
    return sum(float(row.split(" ")[-1]) for row in text.splitlines() if row.startswith(line))


def test_the_template_counts_two_segments():
    assert count_segments(SIGN + TEXT.replace("{code}", PARAMS["code"]), international=False) == 2


async def test_tencents_fee_settles_the_send_and_a_differing_count_is_logged_and_counted(gateway, caplog):
    gateway["tencent"].fee = 3  # Tencent billed three where the text counts two
    with caplog.at_level(logging.WARNING, logger="smsedge.billing"):
        sent = await _send(gateway, "tencent")
    record = await _record(gateway, sent["message_id"])
    assert (record["segments"], record["price"]) == (3, 0.135)
    assert await _balance(gateway) == START - 3 * 45
    assert await _mismatches(gateway, "tencent") == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "smsedge.billing"]
    assert "billed 3 segments where the gateway counted 2" in line and "T2" in line


async def test_tencents_fee_agreeing_with_the_text_counts_no_mismatch(gateway):
    gateway["tencent"].fee = 2
    sent = await _send(gateway, "tencent")
    assert (await _record(gateway, sent["message_id"]))["segments"] == 2
    assert await _balance(gateway) == START - 2 * 45
    assert await _mismatches(gateway, "tencent") == 0


async def test_aliyuns_sms_size_re_prices_the_record_once_even_when_delivered_twice(gateway):
    client, aliyun = gateway["client"], gateway["aliyun"]
    sent = await _send(gateway, "aliyun")
    assert await _balance(gateway) == START - 2 * 60  # charged at the text's count until Aliyun says
    aliyun.sms_size = "3"
    aliyun.default_report = Report(True)
    pushed = orjson.dumps(sms_reports(aliyun))
    for _ in range(2):  # Aliyun pushes again when it did not see our answer
        response = await client.post(
            "/callbacks/aliyun",
            params={"token": TOKEN},
            data=pushed,
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 200
    record = await _record(gateway, sent["message_id"])
    assert (record["status"], record["segments"], record["price"]) == ("success", 3, 0.18)
    assert await _balance(gateway) == START - 3 * 60  # one more segment, paid once
    assert await _mismatches(gateway, "aliyun") == 1


async def test_an_aliyun_receipt_that_agrees_changes_no_charge(gateway):
    client, aliyun = gateway["client"], gateway["aliyun"]
    sent = await _send(gateway, "aliyun")
    aliyun.sms_size = "2"
    aliyun.default_report = Report(False, "UNDELIV")
    response = await client.post(
        "/callbacks/aliyun",
        params={"token": TOKEN},
        data=orjson.dumps(sms_reports(aliyun)),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 200
    record = await _record(gateway, sent["message_id"])
    assert (record["status"], record["segments"], record["price"]) == ("failed", 2, 0.12)  # not refunded
    assert await _balance(gateway) == START - 2 * 60
    assert await _mismatches(gateway, "aliyun") == 0


async def test_a_fee_above_the_reserve_charges_what_the_balance_holds_never_below_zero(gateway):
    client, tencent = gateway["client"], gateway["tencent"]
    _, headers = await add_account(client, "thin", balance_milli=2 * 45)  # exactly the reserve
    tencent.fee = 3  # one segment more than counted, and nothing left to pay it with
    response = await client.post(
        "/api/sms/send",
        headers=headers,
        json={"phone": "13800138000", "template_id": "T2", "params": PARAMS, "provider": "tencent"},
    )
    body = await response.json()
    assert response.status == 200 and body["data"]["status"] == "success", body
    page = await (await client.get("/api/sms/records", headers=headers)).json()
    [record] = page["data"]["records"]
    assert (record["status"], record["segments"], record["price"]) == ("success", 3, 0.09)
    assert (await client.app[STORE].inner.account_by_key(headers["X-API-Key"])).balance_milli == 0
