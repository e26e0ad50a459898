"""``run.py reconcile``: records a crash left pending are refunded (or charged as sent), on both stores.

The records are left the way a gateway killed between reserve and settle leaves them: reserved, never
settled. The stores are built from config by the factory the gateway uses (a real SQLite file, a
real Redis server); the command itself runs as a process on a real SQLite file.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway import reconcile
from gateway.accounts.creation import create_account
from gateway.config.model import GatewayConfig
from gateway.reconcile import reconcile_account
from gateway.redis.client import RedisSource
from gateway.store.backends import build_store
from gateway.store.base import Account, Store
from gateway.store.records import NewRecord, Record, Settlement
from tests.conftest import REDIS_MODES, SHARED_SECRET, redis_section
from tests.gateway_process import run_py

NOW = 1_714_521_600_000  # 2024-05-01 00:00:00 UTC
DAY = "2024-05-01"
CUTOFF = NOW - 300_000  # the default --older-than
OLD = NOW - 600_000
PRICE = 60


@pytest.fixture(params=["sqlite", *(f"redis-{mode}" for mode in REDIS_MODES)])
async def store(request, make_config: Callable[..., GatewayConfig]) -> AsyncIterator[Store]:
    """Each store, Redis in each mode (on a cluster the accounts and their records spread)."""
    backend, _, mode = request.param.partition("-")
    if backend == "redis":
        config = make_config(
            store={"backend": "redis"},
            redis=redis_section(request, mode),
            server={"secret_key": SHARED_SECRET},
        )
    else:
        config = make_config()
    async with RedisSource(config.redis) as redis:
        opened = build_store(config, redis)
        await opened.open()
        yield opened
        await opened.close()


async def crashed_send(store: Store, *message_ids: str, at_ms: int = OLD) -> Account:
    """An account whose send reserved these records at ``at_ms`` and then died: no settle."""
    account, _ = await create_account(store, "team", balance_milli=1000)
    records = [NewRecord(mid, "138****8000", "123456", "mock", PRICE, f"h-{mid}") for mid in message_ids]
    assert await store.reserve(account.id, records, at_ms)
    return account


async def state(store: Store, account: Account) -> tuple[int, int, dict[str, Record]]:
    """(balance, total sent, records by message id) as the store reads them."""
    fresh = await store.account_by_key(account.api_key)
    assert fresh is not None
    found = await store.find_records(account.id, ["old", "young", "waiting", "gone"])
    return fresh.balance_milli, fresh.total_sent, {r.message_id: r for r in found}


async def test_a_record_left_pending_is_refunded_once(store: Store):
    account = await crashed_send(store, "old")
    assert (await state(store, account))[0] == 1000 - PRICE
    report = await reconcile_account(store, account, CUTOFF, NOW, DAY)
    assert (report.reconciled, report.milli, report.awaiting_receipt) == (1, PRICE, 0)
    balance, total, records = await state(store, account)
    assert (balance, total) == (1000, 0)
    old = records["old"]
    assert (old.status, old.price_milli, old.updated_ms) == ("failed", 0, NOW)
    assert old.error is not None and old.error.startswith("OUTCOME_UNKNOWN: ")
    again = await reconcile_account(store, account, CUTOFF, NOW + 1000, DAY)
    assert (again.reconciled, again.milli) == (0, 0)
    assert await state(store, account) == (balance, total, records)


async def test_young_and_awaiting_receipt_records_are_left_alone(store: Store):
    account = await crashed_send(store, "waiting")
    # Settled: the carrier took it, its receipt has not come yet (pending with a carrier id).
    await store.settle(account.id, [Settlement("waiting", "pending", "mock", 50, "c-1")], OLD, DAY)
    await store.reserve(
        account.id, [NewRecord("young", "138****8001", "123456", "mock", PRICE, "h-y")], CUTOFF + 1
    )
    before = await state(store, account)
    report = await reconcile_account(store, account, CUTOFF, NOW, DAY)
    assert (report.reconciled, report.milli, report.awaiting_receipt) == (0, 0, 1)
    assert await state(store, account) == before
    assert [before[2][mid].status for mid in ("waiting", "young")] == ["pending", "pending"]


async def test_as_sent_charges_the_reserved_price_and_counts_it(store: Store):
    account = await crashed_send(store, "old")
    report = await reconcile_account(store, account, CUTOFF, NOW, DAY, as_sent=True)
    assert (report.reconciled, report.milli) == (1, PRICE)
    balance, total, records = await state(store, account)
    assert (balance, total) == (1000 - PRICE, 1)
    assert (records["old"].status, records["old"].price_milli) == ("success", PRICE)
    assert await store.today_sent(account.id, DAY) == 1


async def test_a_dry_run_reports_and_changes_nothing(store: Store):
    account = await crashed_send(store, "old")
    before = await state(store, account)
    report = await reconcile_account(store, account, CUTOFF, NOW, DAY, dry_run=True)
    assert (report.reconciled, report.milli) == (1, PRICE)
    assert await state(store, account) == before


async def test_every_page_of_stale_records_is_settled(store: Store, monkeypatch):
    monkeypatch.setattr(reconcile, "_PAGE", 2)
    monkeypatch.setattr(reconcile, "_CHUNK", 2)
    ids = [f"m{i}" for i in range(7)]
    account = await crashed_send(store, *ids)
    report = await reconcile_account(store, account, CUTOFF, NOW, DAY)
    assert (report.reconciled, report.milli) == (7, 7 * PRICE)
    assert {r.status for r in await store.find_records(account.id, ids)} == {"failed"}
    assert (await store.account_by_key(account.api_key)).balance_milli == 1000  # type: ignore[union-attr]


def run_reconcile(config: Path, *args: str) -> dict[str, Any]:
    result = run_py("reconcile", "--config", config, *args)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    return json.loads(line)


async def test_run_py_reconcile_refunds_what_the_records_api_then_shows_failed(
    config_document: dict[str, Any], make_config, make_client, tmp_path: Path
):
    path = tmp_path / "reconcile.yaml"
    path.write_text(yaml.safe_dump(config_document), encoding="utf-8")
    config = make_config()
    now_ms = int(time.time() * 1000)
    async with RedisSource(config.redis) as redis:
        store = build_store(config, redis)
        await store.open()
        account, secret = await create_account(store, "team", balance_milli=1000)
        records = [NewRecord(f"crash-{i}", "138****8000", "123456", "mock", PRICE, f"h{i}") for i in range(2)]
        assert await store.reserve(account.id, records, now_ms - 600_000)
        young = NewRecord("young", "138****8000", "123456", "mock", PRICE, "hy")
        assert await store.reserve(account.id, [young], now_ms)
        await store.close()

    dry = run_reconcile(path, "--dry-run")
    assert dry["total"] == {"reconciled": 2, "refunded": 0.12, "charged": 0.0, "awaiting_receipt": 0}
    done = run_reconcile(path)
    assert done["dry_run"] is False and done["as"] == "refund"
    assert done["accounts"] == [
        {
            "name": "team",
            "api_key": account.api_key,
            "reconciled": 2,
            "refunded": 0.12,
            "charged": 0.0,
            "awaiting_receipt": 0,
        }
    ]
    assert run_reconcile(path)["total"]["reconciled"] == 0

    client = await make_client(config=config)
    headers = {"X-API-Key": account.api_key, "X-API-Secret": secret}
    info = await (await client.get("/api/account/info", headers=headers)).json()
    assert info["data"]["balance"] == (1000 - PRICE) / 1000  # only the young one still held
    page = await (await client.get("/api/sms/records?per_page=10", headers=headers)).json()
    by_id = {r["message_id"]: r for r in page["data"]["records"]}
    assert by_id["young"]["status"] == "pending"
    for mid in ("crash-0", "crash-1"):
        assert (by_id[mid]["status"], by_id[mid]["price"]) == ("failed", 0)
        assert by_id[mid]["error"].startswith("OUTCOME_UNKNOWN")
