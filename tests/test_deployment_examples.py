"""The Redis examples of docs/deployment.md, each started as written on the real set-up it is for.

A block marked ``<!-- tested: MODE -->`` is merged into the shipped default config, its ``${…}``
variables pointed at a real server (a redis-server, the session's 3-master cluster, the session's
primary + replica + Sentinel), and a gateway process started on it must send and account for a send.
"""

from __future__ import annotations

import re

import pytest
import requests
import yaml

from tests.conftest import DEMO_HEADERS, ROOT, default_document, merge, without_limits
from tests.gateway_process import GatewayProcess, send_demo

DOC = ROOT / "docs" / "deployment.md"
_TESTED = re.compile(r"<!-- tested: (\w+) -->\s*```yaml\n(.*?)```", re.DOTALL)


def examples() -> dict[str, str]:
    return dict(_TESTED.findall(DOC.read_text(encoding="utf-8")))


def test_the_doc_has_a_tested_example_for_every_mode():
    assert sorted(examples()) == ["cluster", "sentinel", "standalone"]


def variables(request: pytest.FixtureRequest, mode: str) -> dict[str, str]:
    """The environment an operator would set for ``mode``, naming this test's real servers."""
    if mode == "sentinel":
        group = request.getfixturevalue("redis_sentinel")
        return {f"SMS_EDGE_SENTINEL_{n}": group.sentinels[0] for n in (1, 2, 3)}
    server = request.getfixturevalue("redis_cluster" if mode == "cluster" else "redis_server")
    return {"SMS_EDGE_REDIS_URL": server.url}


@pytest.mark.parametrize("mode", ["standalone", "cluster", "sentinel"])
def test_each_example_runs_a_gateway_on_its_mode(request, tmp_path, monkeypatch, mode):
    for name, value in variables(request, mode).items():
        monkeypatch.setenv(name, value)
    example = yaml.safe_load(examples()[mode])
    example["redis"]["key_prefix"] = f"docs-{mode}:"  # the session's servers are shared
    document = merge(without_limits(default_document()), example)
    document["server"]["secret_key"] = "deployment-docs-secret-key-00000"
    # Written with the variables still in it: the gateway expands them, as it would in production.
    assert "${" in yaml.safe_dump(document["redis"])
    gateway = GatewayProcess(document, tmp_path, name=mode)
    try:
        send_demo(gateway.url)
        info = requests.get(f"{gateway.url}/api/account/info", headers=DEMO_HEADERS, timeout=10)
        assert info.json()["data"]["total_sent"] == 1
    finally:
        gateway.stop()
