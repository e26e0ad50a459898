"""Billing per segment through the HTTP API: what a send is charged, what its record says, the
config's check of a template's text, /status's list of templates without one, and the usage report
adding up to the records over 10,000 mixed sends on SQLite and on Redis.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.billing.segments import count_segments
from gateway.billing.usage import usage_report
from gateway.config.reader import ConfigError
from gateway.keys import CONFIG, STORE
from gateway.store.records import RecordQuery
from tests.conftest import DEMO_HEADERS, add_account

SIGN = "【SMS Edge】"
#: Two templates whose texts count differently: one segment and, with a long name, two or three.
TEMPLATES = {
    "OTP_1": {"params": ["code"], "text": "您的验证码是{code},5分钟内有效。", "sign": SIGN},
    "NOTICE_2": {
        "params": ["name", "item"],
        "text": "尊敬的{name}:您订购的{item}已发货,预计三日内送达,请保持电话畅通。"
        "如有疑问请联系客服,感谢您的支持!本通知由系统自动发送,请勿直接回复本短信。",
        "sign": SIGN,
    },
    "PLAIN": {"params": ["code"]},  # no text: one segment, as before billing knew texts
}
PRICE_MILLI = 50  # the shipped mock's 0.05 yuan a segment
BACKENDS = {
    "mock": {"plugin": "mock", "price": 0.05},
    "flaky": {"plugin": "mock", "price": 0.04, "fail_rate": 0.3},
}


def _texts(template_id: str, params: dict[str, str]) -> str:
    template = TEMPLATES[template_id]
    text = template["text"]
    for name, value in params.items():
        text = text.replace("{" + name + "}", value)
    return template["sign"] + text


async def _send(client, body: dict[str, Any], headers=DEMO_HEADERS) -> dict[str, Any]:
    response = await client.post("/api/sms/send", json=body, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def _balance(client, headers=DEMO_HEADERS) -> float:
    info = await (await client.get("/api/account/info", headers=headers)).json()
    return info["data"]["balance"]


async def _records(client, headers=DEMO_HEADERS) -> list[dict[str, Any]]:
    page = await (await client.get("/api/sms/records?per_page=100", headers=headers)).json()
    return page["data"]["records"]


async def test_a_two_segment_send_charges_twice_the_price_and_its_record_says_2(make_client, store_backend):
    client = await make_client(templates=TEMPLATES, **store_backend)
    params = {"name": "王小明", "item": "蓝牙耳机一副"}
    assert count_segments(_texts("NOTICE_2", params), international=False) == 2  # the fixture is right
    before = await _balance(client)
    await _send(client, {"phone": "13800138000", "template_id": "NOTICE_2", "params": params})
    await _send(client, {"phone": "13800138001", "template_id": "OTP_1", "params": {"code": "1234"}})
    after = await _balance(client)
    assert round(before - after, 3) == 0.15  # 2 segments and 1 at 0.05
    by_template = {record["template_id"]: record for record in await _records(client)}
    assert (by_template["NOTICE_2"]["segments"], by_template["NOTICE_2"]["price"]) == (2, 0.1)
    assert (by_template["OTP_1"]["segments"], by_template["OTP_1"]["price"]) == (1, 0.05)


async def test_a_long_parameter_makes_more_segments_and_a_template_without_text_stays_one(make_client):
    client = await make_client(templates=TEMPLATES)
    long_name = "欧阳" * 30  # 60 more characters: three segments
    await _send(
        client,
        {"phone": "13800138000", "template_id": "NOTICE_2", "params": {"name": long_name, "item": "书"}},
    )
    await _send(client, {"phone": "13800138001", "template_id": "PLAIN", "params": {"code": "9" * 200}})
    by_template = {record["template_id"]: record for record in await _records(client)}
    assert by_template["NOTICE_2"]["segments"] == 3
    assert by_template["NOTICE_2"]["price"] == 0.15
    assert (by_template["PLAIN"]["segments"], by_template["PLAIN"]["price"]) == (1, 0.05)


async def test_an_international_number_is_counted_in_gsm7_and_a_domestic_one_in_70s(make_client):
    english = {"params": ["code"], "text": "Your code is {code}. " + "x" * 90, "sign": "[Acme]"}
    client = await make_client(templates={"EN_1": english})
    body = {"template_id": "EN_1", "params": {"code": "123456"}}
    await _send(client, {**body, "phone": "+14155550123"})  # 123 GSM-7 characters: one
    await _send(client, {**body, "phone": "13800138000"})  # 123 characters at home: two
    segments = {record["phone"][:3]: record["segments"] for record in await _records(client)}
    assert segments == {"+1 ": 1, "138": 2}


async def test_a_refused_send_refunds_every_segment_and_says_what_it_would_have_been(make_client):
    client = await make_client(
        templates=TEMPLATES,
        providers={"default": "flaky", "backends": {"flaky": {**BACKENDS["flaky"], "fail_rate": 1.0}}},
    )
    before = await _balance(client)
    params = {"name": "王小明", "item": "蓝牙耳机一副"}
    response = await client.post(
        "/api/sms/send",
        json={"phone": "13800138000", "template_id": "NOTICE_2", "params": params},
        headers=DEMO_HEADERS,
    )
    assert response.status != 200
    assert await _balance(client) == before
    [record] = await _records(client)
    assert (record["status"], record["segments"], record["price"]) == ("failed", 2, 0)
    demo = await client.app[STORE].account_by_key(DEMO_HEADERS["X-API-Key"])
    assert demo is not None
    [stored] = (await client.app[STORE].records(demo.id, RecordQuery())).records
    assert stored.refunded_milli == 2 * 40  # what was reserved for it, given back


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ({"params": ["code", "time"], "text": "验证码{code},{minutes}分钟内有效"}, "(code, minutes) differ"),
        ({"params": ["code"], "text": "验证码{code},{2}分钟内有效"}, "(code, {2}) differ"),
        ({"params": ["code"], "text": "验证码是固定的"}, "(none) differ from params (code)"),
        ({"params": ["code"], "carriers": {"mock": {"text": "{code}{code2}"}}}, "carriers.mock.text"),
        ({"params": ["code"], "carriers": {"nowhere": {"sign": "【x】"}}}, "unknown backend 'nowhere'"),
    ],
)
def test_check_config_refuses_a_text_whose_placeholders_differ_from_params(make_config, template, problem):
    with pytest.raises(ConfigError) as refused:
        make_config(templates={"T1": template})
    assert problem in str(refused.value)
    assert "templates.T1" in str(refused.value)


def test_every_carriers_placeholder_style_is_read(make_config):
    for text in ("验证码{code},{time}分钟", "验证码${code},${time}分钟", "验证码{1},{2}分钟"):
        config = make_config(templates={"T1": {"params": ["code", "time"], "text": text}})
        assert config.templates["T1"].text == text


async def test_status_lists_the_templates_without_text(make_client):
    client = await make_client(templates=TEMPLATES)
    status = await (await client.get("/status.json")).json()
    assert status["uncounted_templates"] == ["PLAIN"]
    page = await (await client.get("/status")).text()
    assert "<code>PLAIN</code>" in page


async def _mixed_sends(client, accounts: list[dict[str, str]], total: int) -> None:
    """``total`` numbers in batches of 100: every template, domestic and international numbers,
    a carrier that refuses a third, two accounts."""
    rng = random.Random(26)  # a mix, not a secret
    bodies = []
    for batch in range(total // 100):
        template_id = ("OTP_1", "NOTICE_2", "PLAIN")[batch % 3]
        params = (
            {"code": "1234"}
            if template_id != "NOTICE_2"
            else {"name": "张" * rng.randint(1, 40), "item": "书"}
        )
        phones = [
            f"+1415555{batch:02d}{i:02d}" if i % 10 == 0 else f"139{batch:04d}{i:04d}" for i in range(100)
        ]
        provider = rng.choice(("mock", "flaky"))
        body = {"phones": phones, "template_id": template_id, "params": params, "provider": provider}
        bodies.append((accounts[batch % 2], body))
    for start in range(0, len(bodies), 10):  # ten requests at a time
        answers = await asyncio.gather(
            *(
                client.post("/api/sms/batch-send", json=body, headers=headers)
                for headers, body in bodies[start : start + 10]
            )
        )
        assert [answer.status for answer in answers] == [200] * len(answers)


async def test_the_usage_report_adds_up_to_the_records_over_10000_mixed_sends(make_client, store_backend):
    client = await make_client(
        templates=TEMPLATES, providers={"default": "mock", "backends": BACKENDS}, **store_backend
    )
    store = client.app[STORE]
    shop, shop_headers = await add_account(client, "shop", balance_milli=10_000_000)
    _, growth_headers = await add_account(client, "growth", balance_milli=10_000_000)
    await _mixed_sends(client, [shop_headers, growth_headers], 10_000)
    zone = client.app[CONFIG].server.zone
    expected: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for account in await store.list_accounts():
        page = await store.records(account.id, RecordQuery(per_page=20_000))
        for record in page.records:
            day = datetime.fromtimestamp(record.created_ms / 1000, zone).date().isoformat()
            sums = expected[(day, account.api_key, record.provider)]
            for place, value in enumerate((1, record.segments, record.price_milli, record.refunded_milli)):
                sums[place] += value
        if account.name in ("shop", "growth"):  # money is kept: what left the balance is what was charged
            charged = sum(record.price_milli for record in page.records)
            assert account.balance_milli == 10_000_000 - charged
    today = datetime.now(zone).date()
    rows = await usage_report(store, zone, today - timedelta(days=1), today + timedelta(days=1))
    reported = {
        (row.day, row.api_key, row.provider): [
            row.messages,
            row.segments,
            round(row.charged * 1000),
            round(row.refunded * 1000),
        ]
        for row in rows
    }
    assert reported == dict(expected)
    assert sum(row.messages for row in rows if row.api_key in (shop.api_key,)) == 5_000
    assert sum(row.messages for row in rows) == 10_000
    assert {row.provider for row in rows} == {"mock", "flaky"}
    assert sum(row.refunded for row in rows if row.provider == "flaky") > 0  # refusals are in it
    assert sum(row.segments for row in rows) > 10_000  # and messages of more than one segment
