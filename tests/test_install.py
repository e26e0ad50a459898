"""``make install``: the production venv the systemd unit runs holds the gateway and its runtime
dependencies only, and runs it.

The install is built from a copy of this checkout (pip builds in the tree it installs from) into a
temporary PREFIX, with pip's configured indexes and cache, as an operator's ``sudo make install``
would; about 15 s on the development machine.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import DEMO_KEY, DEMO_SECRET, ROOT, default_document, without_limits
from tests.gateway_process import free_port, send_demo
from tests.test_systemd_unit import UNIT, directives

pytestmark = pytest.mark.slow  # a load run, a build or a fuzz run: seconds to minutes

NOT_COPIED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "build",
    "*.egg-info",
    "__pycache__",
    "data",
    "test-artifacts",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
)


def _names(requirements: str) -> set[str]:
    """Distribution names of setup.cfg requirement lines, normalised as pip lists them."""
    lines = (line.split("#")[0].strip() for line in requirements.splitlines())
    return {re.split(r"[<>=!;\[ ]", line)[0].lower().replace("_", "-") for line in lines if line}


def declared() -> tuple[set[str], set[str]]:
    """The runtime requirements, and those of the test and dev extras."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    extras = setup["options.extras_require"]
    return _names(setup["options"]["install_requires"]), _names(extras["test"]) | _names(extras["dev"])


def installed(venv: Path) -> set[str]:
    listed = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return {package["name"].lower().replace("_", "-") for package in json.loads(listed.stdout)}


def test_make_install_builds_a_runtime_only_venv_that_runs_the_gateway(tmp_path):
    source, prefix, elsewhere = tmp_path / "source", tmp_path / "opt-sms-edge", tmp_path / "cwd"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    elsewhere.mkdir()
    built = subprocess.run(
        ["make", "-C", str(source), "install", f"PREFIX={prefix}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr

    venv = prefix / "venv"
    runtime, development = declared()
    packages = installed(venv)
    assert runtime | {"sms-edge"} <= packages
    assert packages & development == set(), "test or dev packages in the production venv"
    assert not (venv / "bin" / "pytest").exists() and not (venv / "bin" / "ruff").exists()

    # The unit runs this venv's sms-edge, from its own PREFIX.
    (exec_start,) = directives(UNIT.read_text(encoding="utf-8"))["ExecStart"]
    assert exec_start.startswith("/opt/sms-edge/venv/bin/sms-edge serve ")
    assert re.search(r"^PREFIX \?= /opt/sms-edge$", (ROOT / "Makefile").read_text(), re.MULTILINE)

    # Away from the checkout: the installed package carries everything (templates, static files,
    # plugins, the SQLite writer process).
    document = without_limits(default_document())
    document["store"]["path"] = str(tmp_path / "state" / "sms-edge.db")
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    checked = subprocess.run(
        [venv / "bin" / "sms-edge", "check-config", "--config", str(config)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (checked.returncode, checked.stdout) == (0, "ok\n"), checked.stderr
    serve_and_send(venv, config, elsewhere, tmp_path / "serve.log")


def serve_and_send(venv: Path, config: Path, cwd: Path, log: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"PATH": "/usr/bin:/bin", "SMS_EDGE_DEMO_KEY": DEMO_KEY, "SMS_EDGE_DEMO_SECRET": DEMO_SECRET}
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [venv / "bin" / "sms-edge", "serve", "--config", str(config), "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while not _ready(url):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        page = requests.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and "SMS Edge" in page.text
        assert requests.get(f"{url}/static/site.css", timeout=10).status_code == 200
        send_demo(url)
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False
