"""The gateway as a platform engineer runs it: ``python run.py serve`` in its own process.

The seed document's own examples (``tests/fixtures/seed``) are run with only the host and the
credentials swapped, so the contract "the seed's examples work unchanged" is tested against the
text itself.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.conftest import DEMO_KEY, DEMO_SECRET, default_document, without_limits
from tests.gateway_process import GatewayProcess
from tests.seed import SEED_HOST, run_curl, run_python, seed_example, with_demo_credentials


class LiveGateway(GatewayProcess):
    """The embedded default config (limits out of the way), with mock-carrier settings changed."""

    def __init__(self, tmp_path: Path, **backend: object) -> None:
        document = without_limits(default_document())
        document["store"]["path"] = str(tmp_path / "live.db")
        document["providers"]["backends"]["mock"].update(backend)
        super().__init__(document, tmp_path)


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., LiveGateway]]:
    """Start gateways in the test; every one is stopped afterwards, whatever happened."""
    started: list[LiveGateway] = []

    def start(**backend: object) -> LiveGateway:
        started.append(LiveGateway(tmp_path, **backend))
        return started[-1]

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def live(start_gateway) -> LiveGateway:
    return start_gateway()


def swap(example: str, url: str) -> str:
    """The example with the gateway's host and the demo credentials swapped in, ready to run."""
    # stripped: the curl example gets options appended on its last line
    return with_demo_credentials(example.strip().replace(SEED_HOST, url))


def test_seed_python_example_runs_unchanged(live):
    script = swap(seed_example("send.py"), live.url)
    assert "requests.post(" in script and DEMO_SECRET in script
    printed = run_python(script).strip()
    assert "'success': True" in printed
    assert "'message': '短信发送成功'" in printed
    assert "'phone': '138****8000'" in printed


def test_seed_curl_example_runs_unchanged(live):
    command = swap(seed_example("send.sh"), live.url)
    assert command.startswith("curl -X POST")
    body = run_curl(command, "--silent", "--show-error")
    assert body["success"] is True
    assert body["data"]["phone"] == "138****8000"


def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(start_gateway):
    gateway = start_gateway(latency_ms=1500)
    headers = {"X-API-Key": DEMO_KEY, "X-API-Secret": DEMO_SECRET}
    body = {"phone": "13800138000", "template_id": "123456", "params": {"code": "1234"}}
    with ThreadPoolExecutor(max_workers=4) as pool:
        in_flight = [
            pool.submit(requests.post, f"{gateway.url}/api/sms/send", json=body, headers=headers, timeout=30)
            for _ in range(3)
        ]
        # Wait until all three are inside the carrier call (their records are written pending).
        deadline = time.monotonic() + 10
        while _pending(gateway) < 3:
            assert time.monotonic() < deadline, "requests never reached the carrier"
            time.sleep(0.02)
        gateway.process.send_signal(signal.SIGTERM)
        responses = [future.result() for future in in_flight]
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert gateway.process.wait(timeout=30) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{gateway.url}/healthz", timeout=2)


def _pending(gateway: LiveGateway) -> int:
    headers = {"X-API-Key": DEMO_KEY, "X-API-Secret": DEMO_SECRET}
    response = requests.get(
        f"{gateway.url}/api/sms/records", params={"status": "pending"}, headers=headers, timeout=5
    )
    return response.json()["data"]["total"]


def test_logs_are_json_lines_without_numbers_or_secrets(live):
    headers = {"X-API-Key": DEMO_KEY, "X-API-Secret": DEMO_SECRET}
    requests.post(
        f"{live.url}/api/sms/send",
        headers=headers,
        timeout=10,
        json={"phone": "13912345678", "template_id": "123456"},
    )
    requests.post(
        f"{live.url}/api/sms/send",
        headers=headers,
        timeout=10,
        json={"phone": "1391234567x", "template_id": "123456"},
    )
    assert live.stop() == 0
    lines = live.log.read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    access = [entry for entry in entries if entry["logger"] == "smsedge.access"]
    assert {entry["status"] for entry in access} >= {200, 400}
    assert all({"request_id", "route", "status", "latency_ms", "account"} <= set(e) for e in access)
    text = "\n".join(lines)
    assert not re.search(r"1391234567", text)
    assert DEMO_SECRET not in text
