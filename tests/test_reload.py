"""Reload without restart: SIGHUP (or ``run.py reload``) to real gateway processes under traffic.

Each test changes the file the gateway was started with, signals it, and watches what new requests
get: a new price in their records, a new template's declared parameters, a tightened default
bucket's 429, a changed account secret. The traffic running across each reload must stay all 200s.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway import runtime as runtime_module
from gateway.config.model import GatewayConfig
from gateway.runtime import Runtime, RuntimeSlot, grace_seconds
from tests.conftest import DEMO_HEADERS, default_document, without_limits
from tests.fakes import backend_config
from tests.fakes import tencent as fake_tencent
from tests.gateway_process import GatewayProcess, free_port, run_py
from tests.redis_topologies import wait_for
from tests.traffic import Traffic

PROBE_KEY = "sk_probe_00000000000000000"
OLD_SECRET, NEW_SECRET = "probe-secret-old-0000000000", "probe-secret-new-0000000000"
SECRET_KEY = "reload-test-secret-key-00000000"


def probe(secret: str = OLD_SECRET) -> dict[str, str]:
    return {"X-API-Key": PROBE_KEY, "X-API-Secret": secret}


def document_for(tmp_path: Path) -> dict[str, Any]:
    """The shipped config on a fresh SQLite file, with a second account on the default bucket."""
    document = without_limits(default_document())
    document["server"]["port"] = free_port()  # run.py reload finds the gateway by the file's port
    document["store"]["path"] = str(tmp_path / "gateway.db")
    document["providers"]["backends"]["mock"]["latency_ms"] = 20  # requests are in flight
    document["accounts"].append(
        {"name": "probe", "api_key": PROBE_KEY, "api_secret": OLD_SECRET, "balance": 100}
    )  # no own ratelimit: ratelimit.account applies
    return document


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], GatewayProcess]]:
    started: list[GatewayProcess] = []

    def launch(document: dict[str, Any]) -> GatewayProcess:
        started.append(GatewayProcess(document, tmp_path, port=document["server"]["port"]))
        return started[-1]

    yield launch
    for gateway in started:
        assert gateway.stop() == 0


def rewrite(gateway: GatewayProcess, document: dict[str, Any]) -> None:
    gateway.config.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def metric(gateway: GatewayProcess, name: str, **labels: str) -> float:
    text = requests.get(f"{gateway.url}/metrics", headers={"Connection": "close"}, timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{name} {labels} is not exported")


def reloads(gateway: GatewayProcess, result: str) -> float:
    return metric(gateway, "smsedge_config_reloads_total", result=result)


def loaded_at(gateway: GatewayProcess) -> float:
    return metric(gateway, "smsedge_config_last_reload_success_timestamp_seconds")


def hup(gateway: GatewayProcess, result: str = "ok", count: float = 1) -> None:
    gateway.process.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(gateway, result) >= count, f"{count} reload(s) counted {result}")


def log_lines(gateway: GatewayProcess, text: str) -> list[str]:
    return [line for line in gateway.log.read_text().splitlines() if text in line]


def send(gateway: GatewayProcess, headers: dict[str, str], **body: object) -> requests.Response:
    # A new connection each time, so with several workers the kernel may hand it to any of them.
    return requests.post(
        f"{gateway.url}/api/sms/send",
        headers={**headers, "Connection": "close"},
        json={"phone": "13600000000", "template_id": "123456", **body},
        timeout=30,
    )


def prices(gateway: GatewayProcess, headers: dict[str, str]) -> list[float]:
    """The prices of the account's records, newest first."""
    response = requests.get(
        f"{gateway.url}/api/sms/records", headers=headers, params={"per_page": 100}, timeout=10
    )
    assert response.status_code == 200, response.text
    return [record["price"] for record in response.json()["data"]["records"]]


def test_reload_under_traffic_applies_price_template_limit_and_secret(tmp_path, start):
    document = document_for(tmp_path)
    gateway = start(document)
    assert send(gateway, probe(), template_id="888").status_code == 200  # not listed: passed through
    assert all(send(gateway, probe()).status_code == 200 for _ in range(5))
    backend = document["providers"]["backends"]["mock"]
    backend["price"], backend["latency_ms"] = 0.07, 0
    document["templates"] = {"888": {"params": ["code"]}}
    document["ratelimit"]["account"] = {"rate": 0.001, "burst": 2}
    document["accounts"][1]["api_secret"] = NEW_SECRET
    started_at = loaded_at(gateway)
    with Traffic(gateway) as traffic:
        rewrite(gateway, document)
        hup(gateway)
        assert loaded_at(gateway) > started_at > 0
        wait_for(lambda: prices(gateway, DEMO_HEADERS)[0] == 0.07, "a send at the new price")
        wait_for(lambda: traffic.succeeded() >= 40, "traffic after the reload")
    assert {status for _, status, _ in traffic.answers} == {200}, traffic.answers
    # Newest first: the new price from the reload on, the old one before it (sends are one at a time).
    demo_prices = prices(gateway, DEMO_HEADERS)
    assert demo_prices == sorted(demo_prices, reverse=True) and demo_prices[0] == 0.07
    assert set(demo_prices) <= {0.05, 0.07}

    assert send(gateway, probe()).status_code == 401  # the stored secret followed the file
    new = probe(NEW_SECRET)
    missing = send(gateway, new, template_id="888")
    assert missing.status_code == 400 and "code" in missing.json()["message"]
    assert send(gateway, new, template_id="888", params={"code": "1234"}).status_code == 200
    assert send(gateway, new).status_code == 429  # the default bucket now holds 2
    assert prices(gateway, new) == [0.07] + [0.05] * 6  # after the reload, and the 6 before
    assert reloads(gateway, "error") == 0
    assert len(log_lines(gateway, "config reloaded")) == 1


def test_a_send_in_flight_finishes_on_the_config_it_started_with(tmp_path, start):
    document = document_for(tmp_path)
    document["providers"]["backends"]["mock"]["latency_ms"] = 1500
    gateway = start(document)
    answers: list[requests.Response] = []
    slow = threading.Thread(target=lambda: answers.append(send(gateway, DEMO_HEADERS)))
    slow.start()
    wait_for(lambda: prices(gateway, DEMO_HEADERS) != [], "the slow send's reserved record")
    document["providers"]["backends"]["mock"].update(price=0.09, latency_ms=0)
    rewrite(gateway, document)
    hup(gateway)
    assert send(gateway, DEMO_HEADERS).status_code == 200  # new: no latency, the new price
    slow.join(timeout=30)
    assert [answer.status_code for answer in answers] == [200]
    assert prices(gateway, DEMO_HEADERS) == [0.09, 0.05]


def test_an_invalid_file_is_refused_with_one_line_and_a_metric(tmp_path, start):
    document = document_for(tmp_path)
    gateway = start(document)
    started_at = loaded_at(gateway)
    with Traffic(gateway) as traffic:
        document["providers"]["backends"]["mock"].update(price="cheap", colour="red")
        rewrite(gateway, document)
        hup(gateway, "error")
        wait_for(lambda: traffic.succeeded() >= 40, "traffic after the refused reload")
    assert {status for _, status, _ in traffic.answers} == {200}
    check = run_py("check-config", "--config", gateway.config)
    assert check.returncode == 2
    problems = check.stderr.splitlines()
    assert [line.split(":")[0] for line in problems] == [
        "providers.backends.mock.price",
        "providers.backends.mock.colour",
    ]
    refused = log_lines(gateway, "config reload refused")
    assert len(refused) == 1 and "; ".join(problems) in refused[0]  # every problem, in one line
    assert reloads(gateway, "ok") == 0 and loaded_at(gateway) == started_at
    assert prices(gateway, DEMO_HEADERS)[0] == 0.05  # the old config still serves


def test_run_py_reload_and_a_restart_only_change_warns(tmp_path, start):
    document = document_for(tmp_path)
    gateway = start(document)
    document["providers"]["backends"]["mock"]["price"] = 0.06
    document["server"]["max_body_bytes"] = 1024
    rewrite(gateway, document)
    done = run_py("reload", "--config", gateway.config)
    assert done.returncode == 0, done.stderr
    assert f"pid {gateway.process.pid}" in done.stdout
    wait_for(lambda: reloads(gateway, "ok") == 1, "the reload run.py asked for")
    assert send(gateway, DEMO_HEADERS).status_code == 200
    assert prices(gateway, DEMO_HEADERS) == [0.06]
    assert "<td>0.06</td>" in requests.get(f"{gateway.url}/", timeout=10).text  # the docs' price list
    warned = log_lines(gateway, "need a restart")
    assert len(warned) == 1 and "server.max_body_bytes" in warned[0]

    document["providers"]["backends"]["mock"]["price"] = -1
    rewrite(gateway, document)  # invalid: run.py reload says so and sends nothing
    refused = run_py("reload", "--config", gateway.config)
    assert refused.returncode == 2 and refused.stderr.startswith("providers.backends.mock.price")
    assert reloads(gateway, "error") == 0


def test_run_py_reload_without_a_gateway_signals_nothing(tmp_path):
    document = document_for(tmp_path)
    path = tmp_path / "none.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    # A file a killed gateway left behind, its PID now another program's: that one is not signalled.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stale = tmp_path / "stale.pid"
    stale.write_text(f"{bystander.pid}\n", encoding="ascii")
    try:
        for env in ({}, {"SMS_EDGE_PID_FILE": str(stale)}):
            done = run_py("reload", "--config", path, env={**os.environ, **env})
            assert done.returncode == 1 and "no running gateway" in done.stderr
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_run_py_reload_pid_signals_only_a_gateway(tmp_path, start):
    """``--pid`` names a process: SIGHUP goes to it only if it is a gateway (the one the port's PID
    file names, or a process whose command line serves one); anything else is left alone."""
    document = document_for(tmp_path)
    gateway = start(document)
    reload_command = ["reload", "--config", gateway.config]
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        refused = run_py(*reload_command, "--pid", str(bystander.pid))
        assert refused.returncode == 1 and f"process {bystander.pid} is not a gateway" in refused.stderr
        assert "sent SIGHUP" not in refused.stdout
        assert bystander.poll() is None  # SIGHUP would have ended it
    finally:
        bystander.kill()
        bystander.wait()
    done = run_py(*reload_command, "--pid", str(gateway.process.pid))
    assert done.returncode == 0 and f"pid {gateway.process.pid}" in done.stdout
    wait_for(lambda: reloads(gateway, "ok") == 1, "the reload asked for by PID")


def test_every_worker_reloads(tmp_path, start, redis_server):
    document = document_for(tmp_path)
    document["server"].update(workers=2, secret_key=SECRET_KEY)
    document["redis"] = {"url": redis_server.url, "key_prefix": "reload:", "timeout": 1}
    document["ratelimit"]["backend"] = "redis"
    gateway = start(document)
    wait_for(lambda: len(log_lines(gateway, "reloads its config on SIGHUP")) == 2, "both workers")
    document["providers"]["backends"]["mock"]["price"] = 0.08
    document["accounts"][1]["api_secret"] = NEW_SECRET
    with Traffic(gateway) as traffic:
        rewrite(gateway, document)
        hup(gateway, count=2)  # the master forwards SIGHUP; each worker counts its own reload
        wait_for(lambda: traffic.succeeded() >= 40, "traffic after the reload")
    assert {status for _, status, _ in traffic.answers} == {200}
    # New connections land on either worker: every one sees the new price and secret.
    assert all(send(gateway, probe(NEW_SECRET)).status_code == 200 for _ in range(12))
    assert set(prices(gateway, probe(NEW_SECRET))) == {0.08}
    assert all(send(gateway, probe()).status_code == 401 for _ in range(12))
    reloaded = log_lines(gateway, "config reloaded")
    assert len(reloaded) == 2
    pids = {re.search(r"config reloaded in process (\d+)", line).group(1) for line in reloaded}
    assert len(pids) == 2 and str(gateway.process.pid) not in pids  # each worker says it did


OLD_TOKEN, NEW_TOKEN = "admin-token-before-rotation-0", "admin-token-after-rotation-00"
NEW_CARRIER_KEY = "rotatedSecretKey0000000000000000"


def admin_status(gateway: GatewayProcess, token: str) -> int:
    return requests.get(
        f"{gateway.url}/admin/api/accounts",
        timeout=10,
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
    ).status_code


async def test_a_reload_rotates_the_secrets_read_from_files(tmp_path, aiohttp_server):
    """``${file:...}`` is read again by every reload, so an admin token and a carrier key rotate
    without a restart (a ``${VAR}`` cannot: a process's environment is fixed when it starts)."""
    carrier = fake_tencent.TencentUpstream()
    endpoint = str((await aiohttp_server(fake_tencent.create_app(carrier))).make_url("/"))
    token_file, key_file = tmp_path / "admin-token", tmp_path / "tencent-secret-key"
    token_file.write_text(f"{OLD_TOKEN}\n", encoding="utf-8")
    key_file.write_text(f"{fake_tencent.SECRET_KEY}\n", encoding="utf-8")
    document = document_for(tmp_path)
    document["admin"] = {"tokens": [{"name": "ops", "token": f"${{file:{token_file}}}"}]}
    document["providers"]["backends"]["tencent"] = backend_config(
        "tencent",
        endpoint,
        fake_tencent.CREDENTIALS,
        secret_key=f"${{file:{key_file}}}",
        price=0.045,
        retries=0,
    )
    gateway = await asyncio.to_thread(GatewayProcess, document, tmp_path, port=document["server"]["port"])
    try:
        by_tencent = {"provider": "tencent", "params": {"code": "1234"}}
        assert await asyncio.to_thread(admin_status, gateway, OLD_TOKEN) == 200
        assert await asyncio.to_thread(admin_status, gateway, NEW_TOKEN) == 401
        assert (await asyncio.to_thread(send, gateway, DEMO_HEADERS, **by_tencent)).status_code == 200
        carrier.secret_key = NEW_CARRIER_KEY  # rotated at the carrier: the old key is refused
        assert (await asyncio.to_thread(send, gateway, DEMO_HEADERS, **by_tencent)).status_code == 502

        token_file.write_text(f"{NEW_TOKEN}\n", encoding="utf-8")
        key_file.write_text(f"{NEW_CARRIER_KEY}\n", encoding="utf-8")
        done = await asyncio.to_thread(run_py, "reload", "--config", gateway.config)
        assert done.returncode == 0, done.stderr
        await asyncio.to_thread(wait_for, lambda: reloads(gateway, "ok") == 1, "the reload")

        assert await asyncio.to_thread(admin_status, gateway, NEW_TOKEN) == 200
        assert await asyncio.to_thread(admin_status, gateway, OLD_TOKEN) == 401
        assert (await asyncio.to_thread(send, gateway, DEMO_HEADERS, **by_tencent)).status_code == 200
        log = gateway.log.read_text()
        assert all(secret not in log for secret in (OLD_TOKEN, NEW_TOKEN, NEW_CARRIER_KEY))
    finally:
        assert await asyncio.to_thread(gateway.stop) == 0


class ClosingCarrier:
    """Only what a retired runtime does to its carriers: close them."""

    closed = False

    async def close(self) -> None:
        self.closed = True


def runtime_of(config: GatewayConfig, carrier: ClosingCarrier) -> Runtime:
    return Runtime(config, {"mock": carrier}, {}, sender=None)  # type: ignore[dict-item,arg-type]


async def test_a_retired_runtime_is_closed_after_its_grace_and_the_rest_at_shutdown(make_config, monkeypatch):
    config = make_config()
    assert grace_seconds(config) > sum(b.timeout for b in config.providers.backends.values())
    monkeypatch.setattr(runtime_module, "grace_seconds", lambda config: 0.05)
    first, second, third = ClosingCarrier(), ClosingCarrier(), ClosingCarrier()
    slot = RuntimeSlot(runtime_of(config, first))
    slot.swap(runtime_of(config, second))
    assert slot.current.carriers["mock"] is second and not first.closed  # in flight may use it
    await asyncio.sleep(0.2)
    assert first.closed and not second.closed
    monkeypatch.setattr(runtime_module, "grace_seconds", lambda config: 3600)
    slot.swap(runtime_of(config, third))
    await slot.close()  # shutdown: requests have drained, nothing waits out the grace
    assert second.closed and third.closed
