"""A gateway in its own process, as a platform engineer runs it: ``python run.py serve``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import requests
import yaml

from tests.conftest import DEMO_HEADERS, DEMO_KEY, DEMO_SECRET, ROOT

__all__ = ["GatewayProcess", "api_state", "free_port", "run_py", "send_demo"]


def run_py(*args: str | Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python run.py *args`` from the repo root, as an operator types it, its output kept as text.

    The exit code is the caller's to check: several tests pin a refusal's code and words."""
    command = [sys.executable, "run.py", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class GatewayProcess:
    """Writes ``document`` as the config, starts the gateway and waits until /readyz answers 200."""

    # What ``requests`` needs to reach a gateway serving TLS: ``verify``, a client ``cert``. A class
    # default too, for subclasses that start their process without this __init__.
    requests_options: Mapping[str, Any] = MappingProxyType({})

    def __init__(
        self,
        document: dict[str, Any],
        directory: Path,
        name: str = "live",
        port: int | None = None,
        requests_options: dict[str, Any] | None = None,
    ) -> None:
        self.requests_options = requests_options or {}
        self.config = directory / f"{name}.yaml"
        # Key order kept: backends are listed in the order the document gives them.
        self.config.write_text(
            yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        self.port = port or free_port()
        scheme = "https" if document["server"].get("tls", {}).get("cert") else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.log = directory / f"{name}.log"
        env = {**os.environ, "SMS_EDGE_DEMO_KEY": DEMO_KEY, "SMS_EDGE_DEMO_SECRET": DEMO_SECRET}
        if document["server"].get("workers", 1) > 1:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(directory / f"{name}-metrics")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "run.py", "serve", "--config", str(self.config), "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()}")
            try:
                ready = requests.get(f"{self.url}/readyz", timeout=1, **self.requests_options)
                if ready.status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("gateway did not become ready in 30 s")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def send_demo(url: str) -> requests.Response:
    """One send from the demo account to the gateway at ``url``, which must take it."""
    sent = requests.post(
        f"{url}/api/sms/send",
        headers=DEMO_HEADERS,
        timeout=10,
        json={"phone": "13800138000", "template_id": "123456"},
    )
    assert sent.status_code == 200, sent.text
    return sent


def api_state(gateway: GatewayProcess) -> tuple[dict[str, str], dict[str, Any]]:
    """``{message_id: status}`` of every record, and the account info, through the API."""
    statuses: dict[str, str] = {}
    page = 1
    while True:
        response = requests.get(
            f"{gateway.url}/api/sms/records",
            headers=DEMO_HEADERS,
            params={"page": page, "per_page": 100},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        statuses.update({record["message_id"]: record["status"] for record in data["records"]})
        if page * 100 >= data["total"]:
            break
        page += 1
    assert len(statuses) == data["total"]
    info = requests.get(f"{gateway.url}/api/account/info", headers=DEMO_HEADERS, timeout=10)
    assert info.status_code == 200, info.text
    return statuses, info.json()["data"]
