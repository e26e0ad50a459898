"""Schemathesis against the gateway's own /openapi.json, on a real gateway process.

Positive and negative cases for every /api/ operation and, with an admin token configured, every
/admin/api/ operation (examples, coverage and fuzzing phases),
with the checks below; any failure fails the test and prints schemathesis' report, including a
cURL line that reproduces it. Bounded: ``FUZZ_MAX_EXAMPLES`` cases per operation (default 150,
about a minute in all) with a fixed seed, so a run is repeatable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_KEY, DEMO_SECRET, default_document, without_limits
from tests.gateway_process import GatewayProcess

pytestmark = pytest.mark.slow  # a load run, a build or a fuzz run: seconds to minutes

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "150"))
SEED = int(os.environ.get("FUZZ_SEED", "20240601"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
ADMIN_TOKEN = "fuzz-admin-token-0123456789abcdef"


def fuzz_document(directory: Path) -> dict:
    document = without_limits(default_document())
    document["store"]["path"] = str(directory / "fuzz.db")
    document["accounts"][0]["balance"] = 10_000_000  # yuan: every generated send can be paid for
    document["logging"]["level"] = "WARNING"
    document["admin"] = {"tokens": [{"name": "fuzz", "token": ADMIN_TOKEN}]}
    return document


@pytest.fixture
def gateway(tmp_path: Path):
    process = GatewayProcess(fuzz_document(tmp_path), tmp_path, name="fuzz")
    yield process
    process.stop()


def schemathesis_command(url: str, report: Path) -> list[str]:
    return [
        str(SCHEMATHESIS),
        "run",
        f"{url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--header",
        f"X-API-Key: {DEMO_KEY}",
        "--header",
        f"X-API-Secret: {DEMO_SECRET}",
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--request-timeout",
        "10",
        "--workers",
        "1",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]


@pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is in the test extra")
def test_schemathesis_finds_nothing(gateway: GatewayProcess, tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.xml"
    result = subprocess.run(
        schemathesis_command(gateway.url, report),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"schemathesis failed (exit {result.returncode}):\n{output}\n"
        f"gateway log:\n{gateway.log.read_text(encoding='utf-8')[-5000:]}"
    )
    print(output)  # the summary (cases generated, phases) with ``pytest -s``
