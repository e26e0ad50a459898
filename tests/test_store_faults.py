"""A store that cannot write: 503 UNAVAILABLE, never a 200 without a record, and recovery.

Why a full disk, and how. The tests run as root, so ``chmod`` stops nothing; a read-only remount
is refused while the gateway holds the database open for writing ("mount point is busy"); an
EXCLUSIVE lock from another connection is already covered by test_durability (and is a lock, not
a write failure). What really happens to a gateway in production is the disk filling up, so that is
what these tests do: the gateway runs in its own mount namespace (``unshare -m``) with its store on
a 2 MB tmpfs mounted there only; the test reaches that tmpfs through ``/proc/<pid>/root`` and fills
it with a file until the kernel answers ENOSPC. SQLite then fails its writes with SQLITE_FULL exactly
as on a full disk (the WAL cannot grow). Deleting the file frees the space again.

Without the privilege to make a mount namespace the tests are skipped (never faked); under CI,
which runs as root, that is a failure.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gateway.health import WRITE_PROBE_SECONDS
from tests.conftest import DEMO_HEADERS, DEMO_KEY, DEMO_SECRET, ROOT, default_document, without_limits
from tests.gateway_process import GatewayProcess, free_port

TEMPLATE = {"template_id": "123456", "params": {"code": "1234"}}
DISK_KB = 2048


def _can_mount_tmpfs(directory: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{directory}'"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return probe.returncode == 0


class TinyDiskGateway(GatewayProcess):
    """``python run.py serve`` in its own mount namespace, its store on a small tmpfs there."""

    def __init__(self, document: dict[str, Any], directory: Path, disk: Path) -> None:
        # As GatewayProcess.__init__, with the command wrapped in unshare + mount.
        self.config = directory / "tiny.yaml"
        self.config.write_text(yaml.safe_dump(document), encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "tiny.log"
        self.disk = disk
        env = {**os.environ, "SMS_EDGE_DEMO_KEY": DEMO_KEY, "SMS_EDGE_DEMO_SECRET": DEMO_SECRET}
        script = f'mount -t tmpfs -o size={DISK_KB}k tmpfs "$1" && shift && exec "$@"'
        command = [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            "sh",
            str(disk),
            sys.executable,
            "run.py",
            "serve",
            "--config",
            str(self.config),
            "--port",
            str(self.port),
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        self._wait_ready()

    @property
    def inside(self) -> Path:
        """The tmpfs as the gateway sees it, reached from outside its namespace."""
        return Path(f"/proc/{self.process.pid}/root") / self.disk.relative_to("/")

    def fill(self) -> None:
        """Write a file until the tmpfs is full (ENOSPC)."""
        with (self.inside / "filler").open("wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        assert shutil.disk_usage(self.inside).free < 4096 * 2

    def free(self) -> None:
        (self.inside / "filler").unlink()


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[TinyDiskGateway]:
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _can_mount_tmpfs(disk):
        message = "no privilege to mount a tmpfs in a mount namespace"
        if os.environ.get("CI"):  # CI runs as root: there the test must run, never skip
            pytest.fail(message)
        pytest.skip(message)
    document = without_limits(default_document())
    document["store"]["path"] = str(disk / "gateway.db")
    document["store"]["timeout"] = 1
    document["providers"]["backends"]["mock"]["latency_ms"] = 300
    gateway = TinyDiskGateway(document, tmp_path, disk)
    yield gateway
    gateway.stop()


def send(gateway: GatewayProcess, phone: str) -> requests.Response:
    return requests.post(
        f"{gateway.url}/api/sms/send", headers=DEMO_HEADERS, timeout=30, json={"phone": phone, **TEMPLATE}
    )


def records(gateway: GatewayProcess) -> dict[str, str]:
    response = requests.get(
        f"{gateway.url}/api/sms/records", params={"per_page": 100}, headers=DEMO_HEADERS, timeout=10
    )
    assert response.status_code == 200, response.text
    return {record["message_id"]: record["status"] for record in response.json()["data"]["records"]}


def balance(gateway: GatewayProcess) -> float:
    response = requests.get(f"{gateway.url}/api/account/info", headers=DEMO_HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]["balance"]


def carrier_calls(gateway: GatewayProcess) -> int:
    """Numbers the carrier answered, from the gateway's own metric (the carrier is in-process)."""
    text = requests.get(f"{gateway.url}/metrics", timeout=10).text
    return int(
        sum(
            float(value)
            for value in re.findall(r"^smsedge_sms_messages_total\{[^}]*\} (\S+)$", text, flags=re.MULTILINE)
        )
    )


def test_full_disk_is_503_sends_nothing_and_recovers(tiny):
    warm = [send(tiny, f"1390000000{n}") for n in range(3)]
    assert [response.status_code for response in warm] == [200, 200, 200]
    assert carrier_calls(tiny) == 3
    tiny.fill()

    refused = []
    for n in range(5):
        refused.append(send(tiny, f"1391000000{n}"))
    refused.append(
        requests.post(
            f"{tiny.url}/api/sms/batch-send",
            headers=DEMO_HEADERS,
            timeout=30,
            json={"phones": ["13920000001", "13920000002"], **TEMPLATE},
        )
    )
    for response in refused:
        body = response.json()
        assert response.status_code == 503, response.text
        assert body["code"] == "UNAVAILABLE" and body["success"] is False
        assert "disk" not in body["message"] and "sqlite" not in body["message"].lower()
    assert carrier_calls(tiny) == 3  # nothing was sent that could not be recorded
    # Reads need no space: the caller can still see its records and balance.
    assert sorted(records(tiny).values()) == ["success"] * 3
    assert balance(tiny) == 99.85
    # Readiness writes for real (at most every WRITE_PROBE_SECONDS), so it sees the full disk too.
    unready = readiness_within(tiny, WRITE_PROBE_SECONDS + 5, 503)
    assert unready.json()["failed"] == ["store"]

    tiny.free()
    again = send(tiny, "13930000001")
    assert again.status_code == 200, again.text
    assert records(tiny)[again.json()["data"]["message_id"]] == "success"
    assert carrier_calls(tiny) == 4
    assert balance(tiny) == 99.80
    readiness_within(tiny, WRITE_PROBE_SECONDS + 5, 200)


def readiness_within(gateway: GatewayProcess, seconds: float, status: int) -> requests.Response:
    deadline = time.monotonic() + seconds
    while (response := requests.get(f"{gateway.url}/readyz", timeout=10)).status_code != status:
        assert time.monotonic() < deadline, f"/readyz still {response.status_code}: {response.text}"
        time.sleep(0.2)
    return response


def test_concurrent_sends_into_a_filling_disk_never_200_without_a_record(tiny):
    """Sends race the disk filling up: each answer is a 200 with a record, or a 503."""
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def sender(worker: int) -> None:
        for n in range(12):
            response = send(tiny, f"139{worker:02d}{n:06d}")
            with lock:
                answers.append(response)

    threads = [threading.Thread(target=sender, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    tiny.fill()
    for thread in threads:
        thread.join(timeout=120)
    statuses = sorted({response.status_code for response in answers})
    assert set(statuses) <= {200, 503}, statuses
    assert 503 in statuses  # the disk did fill during the load
    tiny.free()

    acknowledged = {r.json()["data"]["message_id"] for r in answers if r.status_code == 200}
    kept = {}
    page = 1
    while True:
        response = requests.get(
            f"{tiny.url}/api/sms/records",
            headers=DEMO_HEADERS,
            timeout=10,
            params={"per_page": 100, "page": page},
        )
        data = response.json()["data"]
        kept.update({record["message_id"]: record["status"] for record in data["records"]})
        if page * 100 >= data["total"]:
            break
        page += 1
    assert acknowledged <= set(kept), "a 200 without a record"
    # A settle that could not be written leaves its record pending (money reserved), never lost.
    assert all(kept[message_id] in ("success", "pending") for message_id in acknowledged)
    assert carrier_calls(tiny) == len(acknowledged)  # no 503 reached the carrier
    charged = sum(status != "failed" for status in kept.values())
    assert balance(tiny) == round(100 - 0.05 * charged, 2)
    after = send(tiny, "13930000009")
    assert after.status_code == 200, after.text


def test_disk_full_between_record_and_settle_keeps_the_record_pending(tiny):
    """The record is written before the carrier call; if the disk fills during it, the caller still
    gets the carrier's answer (200) and the record stays ``pending`` with its price reserved."""
    result: list[requests.Response] = []
    thread = threading.Thread(target=lambda: result.append(send(tiny, "13940000001")))
    thread.start()
    deadline = time.monotonic() + 10
    while "pending" not in records(tiny).values():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    tiny.fill()  # the carrier call takes 300 ms: the settle comes after this
    thread.join(timeout=30)
    (response,) = result
    assert response.status_code == 200, response.text
    message_id = response.json()["data"]["message_id"]
    assert records(tiny) == {message_id: "pending"}
    assert balance(tiny) == 99.95
    tiny.free()
    assert send(tiny, "13940000002").status_code == 200
    assert records(tiny)[message_id] == "pending"
