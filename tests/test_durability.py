"""Durability and privacy: a restart loses nothing, a locked store sends nothing, nothing leaks.

Every test here uses a real SQLite file. The carrier is the mock, wrapped so the tests can see
whether the gateway called it at all (the network edge, not a part of the gateway).
"""

from __future__ import annotations

import copy
import io
import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from gateway.carriers.base import Outcome, SendBatch
from gateway.config.model import LoggingConfig
from gateway.logs import setup_logging
from plugins.mock import MockCarrier
from tests.conftest import DEMO_HEADERS, DEMO_SECRET, SEND_BODY, FakeClock, add_account


class CountingCarrier(MockCarrier):
    """The mock carrier, counting the numbers it was asked to send."""

    sent: ClassVar[list[int]] = []

    async def send(self, batch: SendBatch) -> list[Outcome]:
        CountingCarrier.sent.append(len(batch.recipients))
        return await super().send(batch)


COUNTED = {
    "ratelimit": {"phone": []},
    "providers": {
        "default": "counted",
        "backends": {
            "counted": {"plugin": "tests.test_durability:CountingCarrier", "price": 0.05},
            "flaky": {"plugin": "mock", "price": 0.05, "fail_rate": 1.0},
        },
    },
}


@pytest.fixture(autouse=True)
def fresh_counter() -> None:
    CountingCarrier.sent.clear()


def batch_body(phones: list[str]) -> dict:
    return {"phones": phones, "template_id": "123456", "params": {"code": "1234"}}


async def snapshot(client, headers=DEMO_HEADERS) -> tuple[dict, dict]:
    info = await (await client.get("/api/account/info", headers=headers)).json()
    records = await (await client.get("/api/sms/records?per_page=100", headers=headers)).json()
    return info["data"], records["data"]


async def test_restart_loses_nothing_and_config_does_not_reset_balances(
    make_client, make_config, config_document
):
    clock = FakeClock(1_714_550_400.0)  # 2024-05-01 16:00 in Shanghai
    first = await make_client(clock=clock, **COUNTED)
    assert (await first.post("/api/sms/send", json=SEND_BODY, headers=DEMO_HEADERS)).status == 200
    batch = await first.post(
        "/api/sms/batch-send", json=batch_body(["13900000001", "13900000002"]), headers=DEMO_HEADERS
    )
    assert (await batch.json())["data"]["success_count"] == 2
    refused = await first.post(
        "/api/sms/send", headers=DEMO_HEADERS, json={**SEND_BODY, "phone": "13900000003", "provider": "flaky"}
    )
    assert refused.status == 502
    before = await snapshot(first)
    assert before[0]["balance"] == 99.85 and before[0]["total_sent"] == 3
    assert before[1]["total"] == 4
    await first.close()

    edited = copy.deepcopy(config_document["accounts"])
    edited[0]["balance"] = 500  # the config still names the account: it must not be reset
    second = await make_client(config=make_config(accounts=edited, **COUNTED), clock=clock)
    after = await snapshot(second)
    assert after == before
    assert after[0]["today_sent"] == 3
    again = await second.post(
        "/api/sms/send", json={**SEND_BODY, "phone": "13900000004"}, headers=DEMO_HEADERS
    )
    assert again.status == 200
    info, records = await snapshot(second)
    assert (info["balance"], info["total_sent"], records["total"]) == (99.8, 4, 5)
    assert records["records"][0]["id"] > max(r["id"] for r in before[1]["records"])


@pytest.fixture
def locked(config_document) -> Iterator[sqlite3.Connection]:
    """Another connection that can take the database's write lock."""
    db = sqlite3.connect(config_document["store"]["path"], isolation_level=None)
    yield db
    if db.in_transaction:
        db.execute("ROLLBACK")
    db.close()


async def test_locked_store_is_503_sends_nothing_and_recovers(make_client, locked):
    client = await make_client(store={"timeout": 0.2}, **COUNTED)
    assert (await client.get("/readyz")).status == 200
    locked.execute("BEGIN EXCLUSIVE")

    send = await client.post("/api/sms/send", json=SEND_BODY, headers=DEMO_HEADERS)
    body = await send.json()
    assert send.status == 503 and body["code"] == "UNAVAILABLE" and body["success"] is False
    batch = await client.post("/api/sms/batch-send", json=batch_body(["13900000001"]), headers=DEMO_HEADERS)
    assert batch.status == 503 and (await batch.json())["code"] == "UNAVAILABLE"
    assert CountingCarrier.sent == []  # nothing was sent that could not be recorded

    locked.execute("ROLLBACK")
    info, records = await snapshot(client)
    assert (info["balance"], info["total_sent"], records["total"]) == (100.0, 0, 0)
    assert (await client.get("/readyz")).status == 200
    assert (await client.post("/api/sms/send", json=SEND_BODY, headers=DEMO_HEADERS)).status == 200
    assert CountingCarrier.sent == [1]


async def test_readiness_reports_a_locked_store(make_client, locked):
    client = await make_client(store={"timeout": 0.2}, **COUNTED)
    locked.execute("BEGIN EXCLUSIVE")
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503, body  # every send would be 503 now: don't take traffic
    assert "store" in body["failed"]
    locked.execute("ROLLBACK")
    assert (await client.get("/readyz")).status == 200


@pytest.fixture(params=["json", "text"])
def captured_logs(request) -> Iterator[io.StringIO]:
    """Every log line the gateway writes, through its own handler, filter and formatter."""
    root = logging.getLogger()
    saved_handlers, saved_level, saved_stderr = root.handlers[:], root.level, sys.stderr
    stream = io.StringIO()
    sys.stderr = stream
    try:
        setup_logging(LoggingConfig(level="DEBUG", format=request.param))
    finally:
        sys.stderr = saved_stderr
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


PRIVATE_SECRET = "privacy-test-secret-Zq7Wk"
NUMBERS = ["13912345678", "+14155550123", "008613987654321", "+86 139 1111 2222"]
INVALID = ["139123456789", "1391234567"]
# Every full number in the forms it could be written in (the national number is inside the others).
FORBIDDEN = [
    "13912345678",
    "4155550123",
    "13987654321",
    "13911112222",
    "139 1111 2222",
    *INVALID,
    PRIVATE_SECRET,
    DEMO_SECRET,
]


async def test_no_full_number_or_secret_in_logs_responses_or_database(
    make_client, captured_logs, config_document
):
    client = await make_client(**COUNTED)
    _, headers = await add_account(client, "private", balance_milli=10_000, api_secret=PRIVATE_SECRET)
    exchanges = []
    for who in (DEMO_HEADERS, headers):
        for phone in NUMBERS:
            exchanges.append(("POST", "/api/sms/send", {**SEND_BODY, "phone": phone}, who))
        exchanges += [
            ("POST", "/api/sms/batch-send", batch_body([*NUMBERS, NUMBERS[0]]), who),
            ("POST", "/api/sms/send", {**SEND_BODY, "phone": NUMBERS[0], "provider": "flaky"}, who),
            ("POST", "/api/sms/batch-send", {**batch_body(NUMBERS), "provider": "flaky"}, who),
            ("POST", "/api/sms/send", {**SEND_BODY, "phone": INVALID[0]}, who),
            ("POST", "/api/sms/batch-send", batch_body([NUMBERS[0], *INVALID]), who),
            ("POST", "/api/sms/send", {**SEND_BODY, "phone": int(NUMBERS[0])}, who),
            ("GET", "/api/sms/records?per_page=100", None, who),
            ("GET", "/api/sms/records?status=failed", None, who),
            ("GET", "/api/account/info", None, who),
        ]
    wrong = {"X-API-Key": headers["X-API-Key"], "X-API-Secret": PRIVATE_SECRET + "x"}
    exchanges.append(("POST", "/api/sms/send", {**SEND_BODY, "phone": NUMBERS[0]}, wrong))
    seen = []
    for method, path, body, who in exchanges:
        response = await client.request(method, path, json=body, headers=who)
        seen.append(f"{response.status} {dict(response.headers)} {await response.text()}")
    assert sum(text.startswith("200") for text in seen) >= 10  # the happy paths really ran
    db_path = Path(config_document["store"]["path"])
    files = {p.name: p.read_bytes() for p in db_path.parent.glob(db_path.name + "*")}
    await client.close()  # checkpoint the WAL into the main file, then look again
    files["after close"] = db_path.read_bytes()

    log_text = captured_logs.getvalue()
    assert "/api/sms/send" in log_text and "/api/sms/batch-send" in log_text  # we did capture
    for secret in FORBIDDEN:
        assert secret not in log_text, f"{secret!r} in the log"
        for text in seen:
            assert secret not in text, f"{secret!r} in a response: {text[:300]}"
        for name, raw in files.items():
            assert secret.encode() not in raw, f"{secret!r} in {name}"


async def test_unknown_field_named_after_a_number_is_not_echoed(client):
    """A client that keys its body by phone number must not get the number back in the 400."""
    response = await client.post(
        "/api/sms/send", headers=DEMO_HEADERS, json={**SEND_BODY, "13912345678": "hello"}
    )
    text = await response.text()
    assert response.status == 400
    assert "13912345678" not in text, text
