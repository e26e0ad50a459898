"""The SQLite writer process (``gateway.store.sqlite.write_process``) lives and dies with its gateway.

A real ``python run.py serve`` on the embedded default: the writer is its child. If the writer
dies, sends in flight get 503 (never 500, never a 200 without a record) and the next write starts a
new one; if the gateway dies (SIGKILL) or stops, the writer ends too, so no orphan keeps the
database open.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
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
    return requests.post(f"{gateway.url}/api/sms/send", headers=DEMO_HEADERS, timeout=10,
                         json={"phone": phone, **TEMPLATE})


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
    records = requests.get(f"{gateway.url}/api/sms/records", headers=DEMO_HEADERS, timeout=10,
                           params={"per_page": 50}).json()["data"]["records"]
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
