"""With ``logging.format: json`` every line a gateway writes to stderr is a JSON object, whatever the
configuration makes it say while it starts, serves, refuses to start or stops: a log shipper that
parses lines must never meet a plain one. Real ``run.py serve`` processes, their stderr read whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.certificates import TestAuthority
from tests.conftest import ROOT, default_document
from tests.gateway_process import GatewayProcess
from tests.test_fleet import fleet_document

EARLIER_SECRET, LATER_SECRET = "an-earlier-secret-0123456", "a-later-secret-6543210"


def _json(document: dict[str, Any]) -> dict[str, Any]:
    document["logging"] = {"level": "INFO", "format": "json"}
    return document


def _shipped(tmp_path: Path) -> dict[str, Any]:
    document = default_document()
    document["store"]["path"] = str(tmp_path / "json.db")
    return _json(document)


def _plain_lines(output: str) -> list[str]:
    plain = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            plain.append(line)
    return plain


def _run(document: dict[str, Any], tmp_path: Path, name: str, *, listening: int = 1, **options: Any) -> str:
    """Start a gateway, wait until ``listening`` workers say so, stop it; its stderr."""
    gateway = GatewayProcess(document, tmp_path, name, **options)
    try:
        deadline = time.monotonic() + 30
        while gateway.log.read_text(encoding="utf-8").count("listening on") < listening:
            assert time.monotonic() < deadline, "the workers did not all start in 30 s"
            time.sleep(0.1)
    finally:
        assert gateway.stop() == 0
    return gateway.log.read_text(encoding="utf-8")


def _demo_on_loopback(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return _run(_shipped(tmp_path), tmp_path, "loopback")


def _tls(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    authority = TestAuthority(tmp_path)
    cert, key = authority.issue("server", usage="serverAuth", alt_names="IP:127.0.0.1")
    document = _shipped(tmp_path)
    document["server"]["tls"] = {"cert": str(cert), "key": str(key), "client_ca": ""}
    return _run(document, tmp_path, "tls", requests_options={"verify": str(authority.cert)})


def _two_workers(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    redis = request.getfixturevalue("redis_server")
    document = _json(fleet_document(tmp_path, redis.url, "sqlite"))
    document["server"]["workers"] = 2
    return _run(document, tmp_path, "workers", listening=2)


def _public_address_after_a_secret_change(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """``serve`` applies the config's secrets before it checks a public address for the shipped
    one: here the demo account's secret changes, which is worth a warning."""
    document = _shipped(tmp_path)
    document["server"]["host"] = "0.0.0.0"
    document["accounts"][0]["api_secret"] = EARLIER_SECRET
    earlier = _run(document, tmp_path, "earlier")
    document["accounts"][0]["api_secret"] = LATER_SECRET
    changed = _run(document, tmp_path, "changed")
    assert "api_secret of account 'demo' replaced by the config's" in changed
    return earlier + changed


def _refused_on_a_public_address(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    config = tmp_path / "refused.yaml"
    config.write_text(yaml.safe_dump(_shipped(tmp_path)), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMS_EDGE_")}
    refused = subprocess.run(
        [sys.executable, "run.py", "serve", "--config", str(config), "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0" in refused.stderr
    return refused.stderr


@pytest.mark.parametrize(
    "configuration",
    [
        _demo_on_loopback,
        _tls,
        _two_workers,
        _public_address_after_a_secret_change,
        _refused_on_a_public_address,
    ],
    ids=lambda configuration: configuration.__name__.strip("_"),
)
def test_every_line_on_stderr_is_json_when_the_format_is_json(tmp_path, request, configuration):
    output = configuration(tmp_path, request)
    assert output.strip()
    assert _plain_lines(output) == []
