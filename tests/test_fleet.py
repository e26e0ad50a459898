"""A fleet on one real Redis: several gateway processes behave as one gateway would.

Two separate gateway processes (two "hosts") share the Redis the config names; a third test runs
one gateway with ``workers: 2`` on one port and checks that /metrics on any worker counts every
request exactly once, and that the workers' readings of the callback queue show as one value.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from gateway.process.server import METRICS_DIR_ENV, _clean_metrics_directory, _fresh_metrics_directory
from gateway.store.cache import ACCOUNT_CACHE_TTL
from tests.conftest import DEMO_KEY, DEMO_SECRET, ROOT, default_document, without_limits
from tests.gateway_process import GatewayProcess, free_port, run_py

HEADERS = {"X-API-Key": DEMO_KEY, "X-API-Secret": DEMO_SECRET}
SECRET_KEY = "fleet-test-secret-key-000000000"


def fleet_document(tmp_path: Path, redis_url: str, store: str, **ratelimit: object) -> dict:
    document = without_limits(default_document())
    document["server"]["secret_key"] = SECRET_KEY
    document["store"] = {"backend": store, "path": str(tmp_path / "fleet.db")}
    document["redis"] = {"url": redis_url, "key_prefix": "fleet:", "timeout": 1}
    document["ratelimit"].update({"backend": "redis", **ratelimit})
    return document


@pytest.fixture(params=["sqlite", "redis"])
def store(request) -> str:
    return request.param


@pytest.fixture
def start(tmp_path: Path, redis_server) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def launch(document: dict, name: str, port: int | None = None) -> GatewayProcess:
        started.append(GatewayProcess(document, tmp_path, name=name, port=port))
        return started[-1]

    yield launch
    for gateway in started:
        gateway.stop()


def send(gateway: GatewayProcess, phone: str) -> requests.Response:
    # A new connection each time, so the kernel may hand it to any worker.
    return requests.post(
        f"{gateway.url}/api/sms/send",
        headers={**HEADERS, "Connection": "close"},
        json={"phone": phone, "template_id": "123456"},
        timeout=30,
    )


def account_bucket(document: dict, burst: int) -> dict:
    document["accounts"][0]["ratelimit"] = {"rate": 0.001, "burst": burst}
    return document


def test_one_account_bucket_admits_exactly_b_across_two_gateways(tmp_path, redis_server, start, store):
    document = account_bucket(fleet_document(tmp_path, redis_server.url, store), burst=12)
    first, second = start(document, "a"), start(document, "b")
    phones = [f"139{n:08d}" for n in range(40)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(
            pool.map(
                lambda pair: send(first if pair[0] % 2 else second, pair[1]).status_code, enumerate(phones)
            )
        )
    assert statuses.count(200) == 12
    assert statuses.count(429) == 28


def test_concurrent_sends_on_two_gateways_never_overdraw_one_balance(tmp_path, redis_server, start, store):
    document = fleet_document(tmp_path, redis_server.url, store)
    document["accounts"][0]["balance"] = 0.5  # exactly 10 sends at the mock's 0.05
    first, second = start(document, "a"), start(document, "b")
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda n: send(first if n % 2 else second, f"137{n:08d}"), range(30)))
    assert sorted(r.status_code for r in responses).count(200) == 10
    assert {r.json()["code"] for r in responses if r.status_code != 200} == {"INSUFFICIENT_BALANCE"}
    for gateway in (first, second):
        # The other gateway's sends reach this one's account cache within its bound, not at once.
        deadline = time.monotonic() + ACCOUNT_CACHE_TTL + 0.5
        while True:
            info = requests.get(f"{gateway.url}/api/account/info", headers=HEADERS, timeout=10).json()
            if (info["data"]["balance"], info["data"]["total_sent"]) == (0.0, 10):
                break
            assert time.monotonic() < deadline, info
            time.sleep(0.05)


def test_records_written_through_one_are_paged_and_filtered_through_the_other(
    tmp_path, redis_server, start, store
):
    document = fleet_document(tmp_path, redis_server.url, store)
    document["providers"]["backends"]["refusing"] = {"plugin": "mock", "price": 0.05, "fail_rate": 1.0}
    writer, reader = start(document, "writer"), start(document, "reader")
    for n in range(7):
        assert send(writer, f"136{n:08d}").status_code == 200
    refused = requests.post(
        f"{writer.url}/api/sms/send",
        headers=HEADERS,
        timeout=10,
        json={"phone": "13599999999", "template_id": "123456", "provider": "refusing"},
    )
    assert refused.status_code == 502

    def page(**params: str) -> dict:
        response = requests.get(f"{reader.url}/api/sms/records", headers=HEADERS, params=params, timeout=10)
        return response.json()["data"]

    everything = page(per_page="3")
    assert everything["total"] == 8 and len(everything["records"]) == 3
    assert everything["records"][0]["phone"] == "135****9999"  # newest first
    assert [r["phone"] for r in page(per_page="3", page="3")["records"]] == ["136****0001", "136****0000"]
    assert page(status="failed")["total"] == 1
    assert page(status="success")["total"] == 7


def test_metrics_with_two_workers_count_every_request_once(tmp_path, redis_server, start):
    document = fleet_document(tmp_path, redis_server.url, "sqlite")
    document["server"]["workers"] = 2
    directory = tmp_path / "workers-metrics"  # PROMETHEUS_MULTIPROC_DIR, as an operator set it
    directory.mkdir()
    (directory / "notes.txt").write_text("the operator's own file")
    (directory / "counter_99999.db").write_bytes(b"a dead run's counters")
    gateway = start(document, "workers")
    deadline = time.monotonic() + 30
    while gateway.log.read_text().count("listening on") < 2:  # /readyz answered: one worker is up
        assert time.monotonic() < deadline, "the second worker never started"
        time.sleep(0.05)
    for n in range(24):
        assert send(gateway, f"138{n:08d}").status_code == 200
    metric_files = list((tmp_path / "workers-metrics").glob("counter_*.db"))
    assert len(metric_files) >= 2, "both workers should have served and counted"
    for _ in range(4):  # whichever worker answers the scrape, the sum is the same
        text = requests.get(f"{gateway.url}/metrics", headers={"Connection": "close"}, timeout=10).text
        sends = [
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "smsedge_http_requests_total"
            and sample.labels == {"method": "POST", "route": "/api/sms/send", "status": "200"}
        ]
        assert sends == [24.0]
        # The callback queue is the store's, the same for every worker: shown once, not per worker.
        queue = [s for f in text_string_to_metric_families(text) for s in f.samples if s.name in BACKLOG]
        assert sorted((s.name, s.labels) for s in queue) == [(name, {}) for name in sorted(BACKLOG)]
    assert gateway.stop() == 0
    # Only the metric files are the gateway's to remove; the directory the operator named stays.
    assert sorted(path.name for path in directory.iterdir()) == ["notes.txt"]


BACKLOG = ("smsedge_callback_oldest_age_seconds", "smsedge_callback_queue_depth")
# One worker's metrics in a process of its own: built, then (with arguments) given its deliverer's reading.
WORKER = """
import os, sys
from gateway.metrics import Metrics
metrics = Metrics(["mock"])
if len(sys.argv) > 1:
    metrics.callback_backlog(int(sys.argv[1]), float(sys.argv[2]))
    metrics.callback_outcome("delivered")
print(os.getpid())
"""


def test_workers_readings_of_the_callback_queue_show_as_the_worst_live_one(tmp_path):
    """Each worker's deliverer reads the one queue at its own moment; /metrics shows one value: the
    largest reading of a live worker, so a worker just started (its 0) never hides a backlog."""

    def worker(*reading: str) -> int:
        env = {**os.environ, METRICS_DIR_ENV: str(tmp_path)}
        ran = subprocess.run(
            [sys.executable, "-c", WORKER, *reading], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert ran.returncode == 0, ran.stderr
        return int(ran.stdout)

    def shown() -> dict[str, float]:
        """The callback samples /metrics serves with workers (gateway.metrics' exposition), each once."""
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(tmp_path))
        text = generate_latest(registry).decode()
        samples = [
            (s.name + "".join(f"/{v}" for v in s.labels.values()), s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name.startswith("smsedge_callback")
        ]
        assert len(dict(samples)) == len(samples), samples  # no worker's own copy (a pid label)
        return dict(samples)

    earlier = worker("40", "950.5")
    worker("12", "310")
    worker()  # just started: no reading yet
    assert shown() == {
        "smsedge_callback_oldest_age_seconds": 950.5,
        "smsedge_callback_queue_depth": 40.0,
        "smsedge_callbacks_total/delivered": 2.0,  # counters add up over workers
        "smsedge_callbacks_total/retried": 0.0,
        "smsedge_callbacks_total/dead": 0.0,
        "smsedge_callbacks_total/refused": 0.0,
    }
    mark_process_dead(earlier, str(tmp_path))  # its reading goes with it
    assert shown()["smsedge_callback_queue_depth"] == 12.0
    assert shown()["smsedge_callback_oldest_age_seconds"] == 310.0


def test_the_default_metrics_directory_is_removed_on_shutdown(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv(METRICS_DIR_ENV, raising=False)
    tempfile.tempdir = None  # re-read TMPDIR
    try:
        directory = _fresh_metrics_directory(18080)
        assert directory.parent == tmp_path and os.environ[METRICS_DIR_ENV] == str(directory)
        (directory / "gauge_livesum_123.db").write_bytes(b"")
        _clean_metrics_directory(directory, ours=True)
        assert not directory.exists()
    finally:
        tempfile.tempdir = None
        os.environ.pop(METRICS_DIR_ENV, None)


def test_several_workers_need_the_redis_limiter(tmp_path):
    document = without_limits(default_document())
    document["store"]["path"] = str(tmp_path / "x.db")
    config = tmp_path / "memory.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = run_py("serve", "--config", config, "--workers", "2", "--port", str(free_port()))
    assert result.returncode == 2
    # Every problem at once (check-config's rule): the limiter, and the shared hash key a fleet needs.
    assert result.stderr.strip().splitlines() == [
        "server.workers: more than 1 worker needs ratelimit.backend: redis",
        "server.secret_key: required when state is shared (redis or workers > 1)",
    ]
