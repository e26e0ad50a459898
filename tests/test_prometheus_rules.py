"""The shipped Prometheus files, checked by Debian's promtool: the config and rules load (the config
also with its commented HTTPS lines switched on), and every alert has unit tests that show it firing
and staying quiet (deploy/prometheus/tests/).

promtool is installed by ``make test`` (the Makefile's test-packages); a missing one fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.certificates import TestAuthority
from tests.conftest import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
# The sms-edge job's commented lines for a gateway serving TLS, and the folder they name.
HTTPS_LINES = re.compile(r"^( {4})# (?=scheme: https|tls_config:|  (?:ca|cert|key)_file:)", re.MULTILINE)
TLS_FOLDER = "/etc/prometheus/sms-edge/"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: install Debian's prometheus package (make test-packages)"
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", PROMETHEUS / "prometheus.yml"),
        ("check", "rules", *RULES),
        ("test", "rules", *UNIT_TESTS),
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool_accepts(args: tuple) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_names() -> set[str]:
    document = yaml.safe_load((PROMETHEUS / "rules" / "alerts.yml").read_text(encoding="utf-8"))
    return {rule["alert"] for group in document["groups"] for rule in group["rules"]}


def _cases(firing: bool) -> set[str]:
    """The alerts some unit test expects to fire (or, with ``firing=False``, to stay quiet)."""
    names = set()
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            names |= {
                case["alertname"]
                for case in test.get("alert_rule_test", [])
                if bool(case.get("exp_alerts")) is firing
            }
    return names


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    alerts = _alert_names()
    assert len(alerts) >= 8
    assert alerts - _cases(firing=True) == set(), "alerts no test shows firing"
    assert alerts - _cases(firing=False) == set(), "alerts no test shows staying quiet"


def test_every_alert_is_in_the_docs_alert_table() -> None:
    text = (ROOT / "docs" / "deploy-prometheus.md").read_text(encoding="utf-8")
    table = text.split("\n## Alerts\n")[1].split("\n## ")[0]
    assert _alert_names() == set(re.findall(r"^\| `(SmsEdge\w+)` \|", table, re.MULTILINE))


def test_both_rule_files_are_loaded_by_the_config_and_the_unit_tests() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert {PROMETHEUS / name for name in config["rule_files"]} == set(RULES)
    for path in UNIT_TESTS:
        listed = yaml.safe_load(path.read_text(encoding="utf-8"))["rule_files"]
        assert {(path.parent / name).resolve() for name in listed} == set(RULES), path


def with_https(folder: Path) -> str:
    """The shipped config with its commented HTTPS lines switched on, as an operator would, and the
    TLS files they name looked for in ``folder``."""
    text, switched = HTTPS_LINES.subn(r"\1", (PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert switched == 5, "scheme, tls_config and its three files, commented under the sms-edge job"
    return text.replace(TLS_FOLDER, f"{folder}/")


def tls_files(authority: TestAuthority, folder: Path) -> None:
    """The files the HTTPS lines name: the CA, and a client certificate it signed with its key."""
    cert, key = authority.issue("prometheus", usage="clientAuth")
    shutil.copyfile(authority.cert, folder / "ca.pem")
    shutil.copyfile(cert, folder / "client.pem")
    shutil.copyfile(key, folder / "client-key.pem")


def test_promtool_accepts_the_config_with_the_https_lines_switched_on(tmp_path) -> None:
    tls_files(TestAuthority(tmp_path), tmp_path)
    config = yaml.safe_load(with_https(tmp_path))
    (job,) = config["scrape_configs"]
    assert job["scheme"] == "https"
    assert job["tls_config"] == {
        "ca_file": f"{tmp_path}/ca.pem",
        "cert_file": f"{tmp_path}/client.pem",
        "key_file": f"{tmp_path}/client-key.pem",
    }
    config["rule_files"] = [str(path) for path in RULES]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = promtool("check", "config", path)
    assert result.returncode == 0, result.stdout + result.stderr
