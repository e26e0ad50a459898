"""The SQLite writer process (``gateway.store.sqlite.write_process``) lives and dies with its gateway.

A real ``python run.py serve`` on the embedded default: the writer is its child. If the writer
dies, sends in flight get 503 (never 500, never a 200 without a record) and the next write starts a
new one; if the gateway dies (SIGKILL) or stops, the writer ends too, so no orphan keeps the
database open.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.conftest import DEMO_HEADERS, DEMO_KEY, DEMO_SECRET, default_document, without_limits
from tests.gateway_process import GatewayProcess

TEMPLATE = {"template_id": "123456", "params": {"code": "1234"}}


def writer_pids(parent: int) -> list[int]:
    """The live writer processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == str(parent) and b"gateway.store.sqlite.write_process" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def send(gateway: GatewayProcess, phone: str) -> requests.Response:
    return requests.post(
        f"{gateway.url}/api/sms/send", headers=DEMO_HEADERS, timeout=10, json={"phone": phone, **TEMPLATE}
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    document = without_limits(default_document())
    document["store"]["path"] = str(tmp_path / "writer.db")
    document["accounts"][0].update(api_key=DEMO_KEY, api_secret=DEMO_SECRET)
    started = GatewayProcess(document, tmp_path, name="writer")
    yield started
    started.stop()


def test_a_killed_writer_costs_503s_never_a_500_and_the_next_write_starts_a_new_one(gateway):
    assert send(gateway, "13800138000").status_code == 200
    [writer] = writer_pids(gateway.process.pid)
    os.kill(writer, signal.SIGKILL)
    assert wait_until(lambda: not alive(writer), 5)

    answers = [send(gateway, f"1390000000{n}") for n in range(5)]
    assert {a.status_code for a in answers} <= {200, 503}, [a.text for a in answers]
    assert answers[-1].status_code == 200
    [successor] = writer_pids(gateway.process.pid)
    assert successor != writer
    # Every 200 was recorded by the new writer, as final.
    records = requests.get(
        f"{gateway.url}/api/sms/records", headers=DEMO_HEADERS, timeout=10, params={"per_page": 50}
    ).json()["data"]["records"]
    by_id = {r["message_id"]: r["status"] for r in records}
    for answer in answers:
        if answer.status_code == 200:
            assert by_id[answer.json()["data"]["message_id"]] == "success"


def test_the_writer_ends_with_its_gateway_killed_or_stopped(gateway, tmp_path):
    assert send(gateway, "13800138000").status_code == 200
    [writer] = writer_pids(gateway.process.pid)
    gateway.process.send_signal(signal.SIGKILL)
    gateway.process.wait(timeout=10)
    assert wait_until(lambda: not alive(writer), 10), "the writer outlived its gateway"

    document = without_limits(default_document())
    document["store"]["path"] = str(tmp_path / "writer.db")
    document["accounts"][0].update(api_key=DEMO_KEY, api_secret=DEMO_SECRET)
    again = GatewayProcess(document, tmp_path, name="again")
    try:
        assert send(again, "13800138001").status_code == 200
        [writer] = writer_pids(again.process.pid)
    finally:
        assert again.stop() == 0
    assert wait_until(lambda: not alive(writer), 10), "the writer outlived a clean stop"


STALL_TIMEOUT = 1.0  # store.timeout of the stalled-writer test
ADMIN_TOKEN = "stall-admin-token-0123456789abcdef"


@pytest.fixture
def slow_carrier_gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway whose carrier takes 400 ms, with the admin API on and ``store.timeout`` 1 s."""
    document = without_limits(default_document())
    document["store"].update(path=str(tmp_path / "stall.db"), timeout=STALL_TIMEOUT)
    document["providers"]["backends"]["mock"]["latency_ms"] = 400
    document["admin"] = {"tokens": [{"name": "ops-stall", "token": ADMIN_TOKEN}]}
    document["accounts"][0].update(api_key=DEMO_KEY, api_secret=DEMO_SECRET)
    started = GatewayProcess(document, tmp_path, name="stall")
    yield started
    started.stop()


def timed(method: str, url: str, **kwargs) -> tuple[int | None, dict, float]:
    """Status, JSON body and seconds taken; None and {} when no answer came in 10 s."""
    start = time.monotonic()
    try:
        response = requests.request(method, url, timeout=10, **kwargs)
    except requests.Timeout:
        return None, {}, time.monotonic() - start
    return response.status_code, response.json(), time.monotonic() - start


def all_records(gateway: GatewayProcess) -> dict[str, str]:
    records = requests.get(
        f"{gateway.url}/api/sms/records", headers=DEMO_HEADERS, timeout=10, params={"per_page": 100}
    ).json()["data"]["records"]
    return {r["message_id"]: r["status"] for r in records}


def test_a_stalled_writer_is_503_within_store_timeout_and_a_200_is_never_lost(slow_carrier_gateway):
    gateway = slow_carrier_gateway
    acknowledged = [send(gateway, f"1380013800{n}") for n in range(2)]
    assert [a.status_code for a in acknowledged] == [200, 200]
    # A send in flight: reserved and recorded, its carrier call under way when the writer stops.
    in_flight: list[requests.Response] = []
    thread = threading.Thread(target=lambda: in_flight.append(send(gateway, "13800138009")))
    thread.start()
    assert wait_until(lambda: "pending" in all_records(gateway).values(), 5)
    [writer] = writer_pids(gateway.process.pid)
    os.kill(writer, signal.SIGSTOP)
    try:
        calls = {
            "send": (
                "POST",
                f"{gateway.url}/api/sms/send",
                {"headers": DEMO_HEADERS, "json": {"phone": "13900000001", **TEMPLATE}},
            ),
            "topup": (
                "POST",
                f"{gateway.url}/admin/api/accounts/{DEMO_KEY}/topup",
                {
                    "headers": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
                    "json": {"amount": 5, "reason": "stall test"},
                },
            ),
            "readyz": ("GET", f"{gateway.url}/readyz", {}),
        }
        with ThreadPoolExecutor(len(calls)) as pool:
            futures = {
                name: pool.submit(timed, method, url, **kwargs)
                for name, (method, url, kwargs) in calls.items()
            }
            answers = {name: future.result() for name, future in futures.items()}
        thread.join(timeout=10)
    finally:
        os.kill(writer, signal.SIGCONT)

    for name, (status, body, seconds) in answers.items():
        assert status == 503, (name, status, body)
        assert seconds < STALL_TIMEOUT + 1.0, (name, seconds)
    for name in ("send", "topup"):
        body = answers[name][1]
        assert body["code"] == "UNAVAILABLE" and body["success"] is False, body
    readiness = answers["readyz"][1]
    assert readiness["failed"] == ["store"] and readiness["checks"]["store"] == "unavailable"
    # The carrier answered the send in flight: it is acknowledged though its settle had to wait.
    [late] = in_flight
    assert late.status_code == 200, late.text
    acknowledged.append(late)

    assert wait_until(lambda: requests.get(f"{gateway.url}/readyz", timeout=10).status_code == 200, 10)
    after = send(gateway, "13800138010")
    assert after.status_code == 200, after.text
    acknowledged.append(after)
    ids = {a.json()["data"]["message_id"] for a in acknowledged}
    # Every 200 is on disk and final (the in-flight send's settle landed once the writer went on);
    # the 503 send wrote nothing and the 503 top-up credited nothing.
    assert wait_until(lambda: all_records(gateway) == dict.fromkeys(ids, "success"), 5), all_records(gateway)
    info = requests.get(f"{gateway.url}/api/account/info", headers=DEMO_HEADERS, timeout=10).json()
    assert info["data"]["balance"] == round(100 - 0.05 * len(ids), 2)
