"""The usage report's two doors: ``run.py usage`` (JSON lines or CSV, on the configured store) and
``GET /admin/api/usage`` — the same rows, per account, carrier and day of server.timezone.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from gateway.accounts.creation import create_account
from gateway.store.records import NewRecord, Settlement
from gateway.store.sqlite.store import SQLiteStore
from tests.conftest import DEMO_HEADERS, default_document
from tests.gateway_process import run_py

ZONE = ZoneInfo("Asia/Shanghai")
ADMIN_TOKEN = "usage-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp() * 1000)


async def _seed(path: Path) -> str:
    """Records on two local days, either side of midnight in Shanghai (16:00 UTC): two on the 1st
    (one refused, refunded), one on the 2nd; returns the account's key."""
    store = SQLiteStore(str(path))
    await store.open()
    try:
        account, _ = await create_account(store, "shop", balance_milli=10_000)
        sends = [
            ("a", "2026-03-01 23:59:00", 2),
            ("b", "2026-03-01 12:00:00", 1),
            ("c", "2026-03-02 00:00:30", 3),
        ]
        for message_id, at, segments in sends:
            record = NewRecord(message_id, "138****0000", "T1", "mock", 50 * segments, "h", None, segments)
            assert await store.reserve(account.id, [record], _ms(at))
        await store.settle(
            account.id,
            [
                Settlement("a", "success", "mock", 100, "c-a", None, 2),
                Settlement("b", "failed", "mock", 0, None, "E: no", 1),
                Settlement("c", "success", "mock", 150, "c-c", None, 3),
            ],
            _ms("2026-03-02 00:01:00"),
            "2026-03-02",
        )
        return account.api_key
    finally:
        await store.close()


EXPECTED = [
    {"day": "2026-03-01", "provider": "mock", "messages": 2, "segments": 3, "charged": 0.1, "refunded": 0.05},
    {"day": "2026-03-02", "provider": "mock", "messages": 1, "segments": 3, "charged": 0.15, "refunded": 0.0},
]


def _shown(rows: list[dict]) -> list[dict]:
    return [{key: row[key] for key in EXPECTED[0]} for row in rows]


@pytest.mark.subprocess
def test_the_cli_prints_the_rows_per_local_day_as_json_lines_and_as_csv(tmp_path):
    db = tmp_path / "usage.db"
    api_key = asyncio.run(_seed(db))
    document = default_document()
    document["store"]["path"] = str(db)
    config = tmp_path / "usage.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    days = ("--from", "2026-03-01", "--to", "2026-03-02", "--config", config)
    result = run_py("usage", *days)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert _shown(rows) == EXPECTED
    assert {(row["account"], row["api_key"]) for row in rows} == {("shop", api_key)}
    result = run_py("usage", *days, "--format", "csv", "--account", api_key)
    assert result.returncode == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["day"], row["segments"], row["charged"], row["refunded"]) for row in table] == [
        ("2026-03-01", "3", "0.1", "0.05"),
        ("2026-03-02", "3", "0.15", "0.0"),
    ]
    one_day = run_py("usage", "--from", "2026-03-02", "--to", "2026-03-02", "--config", config)
    assert _shown([json.loads(line) for line in one_day.stdout.splitlines()]) == EXPECTED[1:]
    for refused in (
        ("--from", "2026-03-02", "--to", "2026-03-01"),  # backwards
        ("--from", "2026-03-01", "--to", "2026-03-02", "--account", "sk_nobody"),
    ):
        result = run_py("usage", *refused, "--config", config)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.strip()
    assert run_py("usage", "--from", "March", "--to", "2026-03-02", "--config", config).returncode == 2


async def test_the_admin_api_answers_the_same_rows_and_refuses_bad_ranges(make_client):
    client = await make_client(admin={"tokens": [{"name": "ops", "token": ADMIN_TOKEN}]})
    sent = await client.post(
        "/api/sms/send",
        json={"phone": "13800138000", "template_id": "123456", "params": {"code": "1"}},
        headers=DEMO_HEADERS,
    )
    assert sent.status == 200
    today = datetime.now(ZONE).date().isoformat()
    response = await client.get(f"/admin/api/usage?from={today}&to={today}", headers=ADMIN)
    assert response.status == 200
    [row] = (await response.json())["data"]["rows"]
    assert (row["day"], row["api_key"], row["provider"]) == (today, DEMO_HEADERS["X-API-Key"], "mock")
    assert (row["messages"], row["segments"], row["charged"], row["refunded"]) == (1, 1, 0.05, 0.0)
    for query, status in (
        (f"from={today}&to={today}&account=sk_nobody", 404),
        (f"from={today}", 400),
        ("from=2026-03-02&to=2026-03-01", 400),
        ("from=2026-02-30&to=2026-03-01", 400),
        ("from=2020-01-01&to=2026-01-01", 400),  # more than a year
    ):
        refused = await client.get(f"/admin/api/usage?{query}", headers=ADMIN)
        assert refused.status == status, query
        assert (await refused.json())["success"] is False
    assert (await client.get(f"/admin/api/usage?from={today}&to={today}", headers=DEMO_HEADERS)).status == 401
