"""The Grafana dashboard against Debian's real Prometheus, scraping a real gateway on loopback.

Prometheus runs the shipped deploy/prometheus/prometheus.yml (scrape every second, the shipped rules)
against a gateway that has served two rounds of traffic touching every panel: sends, a carrier
refusal, a 401 and a 429. Every panel's query must then parse and return a number, as Grafana would
ask for it; a typo in a metric name or a label matcher returns nothing and fails here.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.certificates import TestAuthority
from tests.conftest import DEMO_HEADERS, default_document, without_limits
from tests.gateway_process import GatewayProcess, free_port
from tests.test_prometheus_rules import PROMETHEUS, RULES, tls_files, with_https

DASHBOARD = json.loads((PROMETHEUS.parent / "grafana" / "sms-edge.json").read_text(encoding="utf-8"))
JOB = "sms-edge"
# What Grafana puts in place of its variables when it sends a panel's query.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$job": JOB}


def gateway_document(tmp_path: Path) -> dict:
    document = without_limits(default_document())
    document["store"]["path"] = str(tmp_path / "gateway.db")
    document["ratelimit"]["phone"] = [{"limit": 1, "seconds": 60}]  # a second send to a number: 429
    document["providers"]["backends"]["refusing"] = {"plugin": "mock", "price": 0.05, "fail_rate": 1.0}
    return document


def prometheus_config(directory: Path, target: str, shipped: str | None = None) -> Path:
    """The shipped config (or ``shipped``, its text as edited), scraping ``target`` every second,
    with the rules at absolute paths."""
    config = yaml.safe_load(shipped or (PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(path) for path in RULES]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == JOB
    job["static_configs"] = [{"targets": [target]}]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Prometheus:
    """Debian's prometheus binary on a free loopback port, its data under ``directory``."""

    def __init__(self, directory: Path, target: str, shipped: str | None = None) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus missing: install Debian's prometheus package (make test-packages)"
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = directory / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={prometheus_config(directory, target, shipped)}",
                    f"--storage.tsdb.path={directory / 'tsdb'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_for(lambda: requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200)

    def wait_for(self, condition, seconds: float = 15) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if condition():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not within {seconds} s; prometheus log:\n{self.log.read_text()}")

    def query(self, expr: str) -> dict:
        return requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()

    def scraped(self, expr: str) -> bool:
        return bool(self.query(expr)["data"]["result"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def send(gateway: GatewayProcess, phone: str, headers: dict = DEMO_HEADERS, **extra: str) -> int:
    body = {"phone": phone, "template_id": "123456", **extra}
    return requests.post(f"{gateway.url}/api/sms/send", json=body, headers=headers, timeout=10).status_code


def traffic(gateway: GatewayProcess, round_: int) -> None:
    """One round: two sends to a number (200 then 429), a refused send (502), a 401."""
    phone = f"1380013800{round_}"
    assert [send(gateway, phone), send(gateway, phone)] == [200, 429]
    assert send(gateway, f"1390013900{round_}", provider="refusing") == 502
    assert send(gateway, phone, headers={}) == 401


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[Prometheus]:
    directory = tmp_path_factory.mktemp("dashboard")
    gateway = GatewayProcess(gateway_document(directory), directory)
    server = None
    try:
        server = Prometheus(directory, gateway.url.removeprefix("http://"))
        # Two rounds, each seen by a scrape, so every counter has grown between two samples.
        for round_ in (1, 2):
            traffic(gateway, round_)
            server.wait_for(lambda n=round_: server.scraped(f"smsedge_auth_failures_total >= {n}"))
        yield server
    finally:
        if server:
            server.stop()
        gateway.stop()


def panel_queries() -> list[tuple[str, str]]:
    return [
        (f"{panel['title']} {target['refId']}", target["expr"])
        for panel in DASHBOARD["panels"]
        for target in panel.get("targets", [])
    ]


def as_grafana_sends(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


@pytest.mark.parametrize("expr", [e for _, e in panel_queries()], ids=[name for name, _ in panel_queries()])
def test_every_panel_query_parses_and_returns_data(prometheus: Prometheus, expr: str) -> None:
    answer = prometheus.query(as_grafana_sends(expr))
    assert answer["status"] == "success", answer
    values = [float(series["value"][1]) for series in answer["data"]["result"]]
    assert any(math.isfinite(value) for value in values), (expr, answer["data"])


def test_the_job_variable_lists_the_scraped_job(prometheus: Prometheus) -> None:
    (variable,) = [v for v in DASHBOARD["templating"]["list"] if v["name"] == "job"]
    metric = re.fullmatch(r"label_values\((\w+), job\)", variable["query"]["query"]).group(1)
    answer = requests.get(
        f"{prometheus.url}/api/v1/label/job/values", params={"match[]": metric}, timeout=10
    ).json()
    assert answer["data"] == [JOB]


def test_the_dashboard_covers_every_metric_the_gateway_exports(prometheus: Prometheus) -> None:
    def family(name: str) -> str:
        return re.sub(r"_(total|bucket|count|sum|created)$", "", name)

    exported = {
        family(series["metric"]["__name__"])
        for series in prometheus.query('{__name__=~"smsedge_.+"}')["data"]["result"]
    }
    queried = {family(name) for _, expr in panel_queries() for name in re.findall(r"smsedge_\w+", expr)}
    assert len(exported) >= 7
    assert exported - queried == set()


def test_every_recording_rule_has_a_series(prometheus: Prometheus) -> None:
    records = [
        rule["record"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    ]
    assert records
    for record in records:
        prometheus.wait_for(lambda r=record: prometheus.scraped(r), seconds=5)


def test_the_https_lines_of_the_shipped_config_scrape_a_gateway_serving_mutual_tls(tmp_path):
    """The commented HTTPS lines, switched on, against a gateway that asks every client for a
    certificate (``server.tls.client_ca``): Prometheus scrapes it."""
    authority = TestAuthority(tmp_path)
    tls_files(authority, tmp_path)
    cert, key = authority.issue("gateway", usage="serverAuth", alt_names="IP:127.0.0.1")
    document = gateway_document(tmp_path)
    document["server"]["tls"] = {"cert": str(cert), "key": str(key), "client_ca": str(authority.cert)}
    client = (str(tmp_path / "client.pem"), str(tmp_path / "client-key.pem"))
    gateway = GatewayProcess(
        document, tmp_path, requests_options={"verify": str(authority.cert), "cert": client}
    )
    server = None
    try:
        server = Prometheus(tmp_path, gateway.url.removeprefix("https://"), with_https(tmp_path))
        server.wait_for(lambda: server.scraped(f'up{{job="{JOB}"}} == 1'))
    finally:
        if server:
            server.stop()
        gateway.stop()
