"""Crash safety: a gateway killed with SIGKILL under load loses no send it acknowledged with 200.

A real ``python run.py serve`` process (embedded SQLite store, limits out of the way, the mock
carrier with some latency and a share of refusals) takes concurrent sends from threads; the test
kills it with SIGKILL after a set number of 200s (so each round kills at a different, deterministic
point of the load), then looks at the database twice: directly with ``sqlite3`` (WAL and all, as
the crash left it) and through a gateway restarted on the same file.

Invariants checked every round:
- every ``message_id`` answered with 200 has a record, and that record is not ``failed``;
- the money adds up: initial balance − Σ price of the non-failed records = final balance
  (a ``pending`` record keeps its price reserved, a ``failed`` one was refunded);
- ``total_sent`` counts exactly the ``success`` records;
- a restart does not touch ``pending`` records: the outcome of those sends is unknown.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import DEMO_HEADERS, default_document, without_limits
from tests.gateway_process import GatewayProcess, api_state

PRICE_MILLI = 50  # the mock's price, 0.05 yuan
INITIAL_MILLI = 100_000  # the demo account's 100.00 yuan
TEMPLATE = {"template_id": "123456", "params": {"code": "1234"}}


def crash_document(db: Path, **mock: Any) -> dict[str, Any]:
    document = without_limits(default_document())
    document["store"]["path"] = str(db)
    document["providers"]["backends"]["mock"].update(mock)
    document["logging"]["level"] = "WARNING"
    return document


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateways on ``tmp_path/crash.db``; every one still running is stopped afterwards."""
    started: list[GatewayProcess] = []

    def start(**mock: Any) -> GatewayProcess:
        document = crash_document(tmp_path / "crash.db", **mock)
        started.append(GatewayProcess(document, tmp_path, name=f"crash-{len(started)}"))
        return started[-1]

    yield start
    for gateway in started:
        gateway.stop()


class Load:
    """Threads sending to distinct numbers until the gateway dies; every 200 is remembered."""

    def __init__(self, url: str, threads: int, kill_after: int) -> None:
        self.url = url
        self.kill_after = kill_after
        self.acknowledged: list[str] = []
        self.statuses: Counter[object] = Counter()
        self.enough = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), "a load thread hung after the kill"

    def _run(self, worker: int) -> None:
        with requests.Session() as session:
            for n in range(10_000):
                body = {"phone": f"139{worker:03d}{n:05d}", **TEMPLATE}
                try:
                    response = session.post(
                        f"{self.url}/api/sms/send", json=body, headers=DEMO_HEADERS, timeout=20
                    )
                except requests.RequestException as exc:  # the gateway is gone
                    with self._lock:
                        self.statuses[type(exc).__name__] += 1
                    return
                with self._lock:
                    self.statuses[response.status_code] += 1
                    if response.status_code == 200:
                        self.acknowledged.append(response.json()["data"]["message_id"])
                        if len(self.acknowledged) >= self.kill_after:
                            self.enough.set()


def database_state(db: Path) -> tuple[dict[str, tuple[str, int]], int, int]:
    """``{message_id: (status, price_milli)}``, the balance and total_sent, read from the file."""
    connection = sqlite3.connect(db)
    try:
        records = {
            message_id: (status, price)
            for message_id, status, price in connection.execute(
                "SELECT message_id, status, price_milli FROM records"
            )
        }
        balance, total_sent = connection.execute(
            "SELECT balance_milli, total_sent FROM accounts WHERE name = 'demo'"
        ).fetchone()
    finally:
        connection.close()
    return records, balance, total_sent


def assert_consistent(records: dict[str, tuple[str, int]], balance: int, total_sent: int) -> None:
    charged = [price for status, price in records.values() if status != "failed"]
    assert all(price == PRICE_MILLI for price in charged), "a kept record not charged its price"
    assert all(price == 0 for status, price in records.values() if status == "failed")
    assert INITIAL_MILLI - sum(charged) == balance, (INITIAL_MILLI, sum(charged), balance)
    assert total_sent == sum(status == "success" for status, _ in records.values())


@pytest.mark.parametrize("kill_after", [1, 40, 150])
def test_sigkill_under_load_loses_no_acknowledged_send(start_gateway, tmp_path, kill_after):
    gateway = start_gateway(latency_ms=20, fail_rate=0.1)
    load = Load(gateway.url, threads=24, kill_after=kill_after)
    load.start()
    assert load.enough.wait(timeout=60), f"never reached {kill_after} acks: {load.statuses}"
    gateway.process.send_signal(signal.SIGKILL)
    assert gateway.process.wait(timeout=10) == -signal.SIGKILL
    load.join()

    acknowledged = set(load.acknowledged)
    assert len(acknowledged) == len(load.acknowledged) >= kill_after
    assert set(load.statuses) <= {200, 502, "ConnectionError"}, load.statuses

    # The file as the crash left it (the WAL is replayed by whoever opens it first).
    records, balance, total_sent = database_state(tmp_path / "crash.db")
    missing = acknowledged - set(records)
    assert not missing, f"{len(missing)} acknowledged sends have no record"
    assert all(records[message_id][0] == "success" for message_id in acknowledged)
    assert_consistent(records, balance, total_sent)
    pending = {message_id for message_id, (status, _) in records.items() if status == "pending"}

    # A gateway restarted on the same file serves the same truth, and changes none of it.
    restarted = start_gateway(latency_ms=20, fail_rate=0.1)
    statuses, info = api_state(restarted)
    assert statuses == {message_id: status for message_id, (status, _) in records.items()}
    assert info["balance"] == balance / 1000 and info["total_sent"] == total_sent
    assert {message_id for message_id, status in statuses.items() if status == "pending"} == pending

    # ... and keeps working: a new send is recorded and charged on top of what was there.
    again = requests.post(
        f"{restarted.url}/api/sms/send",
        headers=DEMO_HEADERS,
        timeout=10,
        json={"phone": "13800138000", **TEMPLATE},
    )
    assert again.status_code in (200, 502), again.text
    assert restarted.stop() == 0
    after, balance_after, total_after = database_state(tmp_path / "crash.db")
    assert len(after) == len(records) + 1
    assert_consistent(after, balance_after, total_after)


def test_records_pending_at_the_crash_stay_pending_after_restart(start_gateway, tmp_path):
    """The gateway cannot know what the carrier did with a send it crashed in the middle of: it
    must claim neither success nor failure, and the price stays reserved (docs/api.md, After a crash).
    """
    gateway = start_gateway(latency_ms=60_000)  # every send is inside the carrier call when killed
    headers = DEMO_HEADERS
    in_flight = [
        threading.Thread(target=_send_ignoring_errors, args=(gateway.url, f"1390000000{n}"), daemon=True)
        for n in range(5)
    ]
    for thread in in_flight:
        thread.start()
    deadline = time.monotonic() + 20
    while _count(gateway, "pending") < 5:
        assert time.monotonic() < deadline, "the sends never reached the carrier"
        time.sleep(0.02)
    gateway.process.send_signal(signal.SIGKILL)
    gateway.process.wait(timeout=10)
    for thread in in_flight:
        thread.join(timeout=30)

    restarted = start_gateway(latency_ms=0)
    time.sleep(0.5)  # nothing in the background may settle them either
    statuses, info = api_state(restarted)
    assert sorted(statuses.values()) == ["pending"] * 5
    assert info["balance"] == (INITIAL_MILLI - 5 * PRICE_MILLI) / 1000  # still reserved
    assert info["total_sent"] == 0 and info["today_sent"] == 0
    sent = requests.post(
        f"{restarted.url}/api/sms/send",
        headers=headers,
        timeout=10,
        json={"phone": "13800138000", **TEMPLATE},
    )
    assert sent.status_code == 200, sent.text
    assert _count(restarted, "pending") == 5 and _count(restarted, "success") == 1
    assert restarted.stop() == 0
    # A clean stop does not finalise them either.
    records, balance, total_sent = database_state(tmp_path / "crash.db")
    assert sorted(status for status, _ in records.values()) == ["pending"] * 5 + ["success"]
    assert_consistent(records, balance, total_sent)


def _send_ignoring_errors(url: str, phone: str) -> None:
    with contextlib.suppress(requests.RequestException):  # killed while waiting: the point
        requests.post(
            f"{url}/api/sms/send", headers=DEMO_HEADERS, timeout=30, json={"phone": phone, **TEMPLATE}
        )


def _count(gateway: GatewayProcess, status: str) -> int:
    response = requests.get(
        f"{gateway.url}/api/sms/records", params={"status": status}, headers=DEMO_HEADERS, timeout=5
    )
    return response.json()["data"]["total"]
