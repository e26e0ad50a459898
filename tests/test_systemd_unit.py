"""deploy/systemd/sms-edge.service: systemd's own checker accepts it, and the hardening is there.

``systemd-analyze verify`` (Debian's systemd, installed by ``make test-packages``) refuses a unit
whose ExecStart binary is missing, so it checks a copy pointed at this checkout and the ``sms-edge``
of this venv instead of /opt/sms-edge (tests/test_install.py runs the venv ``make install`` builds).
It reports a misspelt directive or a bad value only as a warning (exit status 0), so any output at
all fails the test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.process.server import SHUTDOWN_TIMEOUT
from tests.conftest import ROOT

UNIT = ROOT / "deploy" / "systemd" / "sms-edge.service"
HARDENING = {
    "User": "sms-edge",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter": "@system-service",
    "SystemCallArchitectures": "native",
    "LockPersonality": "yes",
    "RestrictSUIDSGID": "yes",
    "StateDirectory": "sms-edge",
    "Restart": "on-failure",
    "KillSignal": "SIGTERM",
    "KillMode": "mixed",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "EnvironmentFile": "-/etc/sms-edge/sms-edge.env",  # optional: no secret needs it
}
CREDENTIALS = "/etc/sms-edge/credentials/"
PRODUCTION = ROOT / "config" / "production.example.yaml"


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def verify(text: str, directory: Path) -> subprocess.CompletedProcess[str]:
    local = text.replace("/opt/sms-edge/venv/bin/sms-edge", str(Path(sys.executable).parent / "sms-edge"))
    unit = directory / UNIT.name
    unit.write_text(local.replace("/opt/sms-edge", str(ROOT)), encoding="utf-8")
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )


def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path):
    result = verify(UNIT.read_text(encoding="utf-8"), tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize(
    ("change", "warning"),
    [
        (("ProtectSystem=strict", "ProtectSystem=stricter"), "Failed to parse"),
        (("NoNewPrivileges=", "NoNewPrivilege="), "Unknown key"),
    ],
)
def test_the_verify_check_catches_a_bad_directive(tmp_path, change, warning):
    """The check above can fail: systemd-analyze's warnings for a typo reach its output."""
    result = verify(UNIT.read_text(encoding="utf-8").replace(*change), tmp_path)
    assert warning in result.stderr


def test_the_unit_is_hardened():
    found = directives(UNIT.read_text(encoding="utf-8"))
    assert {key: found.get(key, [None])[0] for key in HARDENING} == HARDENING
    # Longer than the gateway's own drain, or systemd kills requests it would have finished.
    assert int(found["TimeoutStopSec"][0]) > SHUTDOWN_TIMEOUT
    assert found["ExecStart"][0].startswith("/opt/sms-edge/venv/bin/sms-edge serve --config ")


def test_the_service_s_secrets_are_files_a_reload_reads_again():
    """The installed config (the production example) names each secret as a file under the
    credentials directory, which the gateway reads again on ``systemctl reload``; the environment
    file and ``LoadCredential=`` (copied once at start by systemd 252) would keep the old value."""
    example = yaml.safe_load(PRODUCTION.read_text(encoding="utf-8"))
    backends = example["providers"]["backends"]
    secrets = [
        example["server"]["secret_key"],
        backends["tencent"]["secret_id"],
        backends["tencent"]["secret_key"],
        backends["aliyun"]["access_key_id"],
        backends["aliyun"]["access_key_secret"],
    ]
    assert all(secret.startswith("${file:" + CREDENTIALS) for secret in secrets), secrets
    unit = UNIT.read_text(encoding="utf-8")
    assert CREDENTIALS in unit and "LoadCredential" not in directives(unit)
