"""GET /api/sms/records with status and time filters over 1,000,000 records of one account.

The records are written straight into the SQLite file: the schema and the account come from the
gateway's own code (SQLiteStore, create_account), the rows from one executemany per 100,000. They
span 30 days, newest now, 80 % success, 15 % failed, 5 % pending. Each query asks for one status
over a random window of 1 to 7 days, page 1 to 5 of 20: the worst (success, 7 days) counts about
190,000 matching rows for its ``total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from bench.client import timed_requests
from bench.servers import BENCH_KEY, BENCH_SECRET, HUGE_BUCKET, gateway_document, start_gateway
from bench.settings import Settings
from bench.stats import latency_summary
from gateway.accounts.creation import create_account
from gateway.config.model import BucketConfig
from gateway.store.sqlite.store import SQLiteStore

__all__ = ["run"]

DAY_MS = 86_400_000
SPAN_DAYS = 30
STATUSES = ("success", "failed", "pending")
WEIGHTS = (80, 15, 5)
CHUNK = 100_000
WARMUP = 20
HEADERS = {"X-API-Key": BENCH_KEY, "X-API-Secret": BENCH_SECRET}


async def _account(path: Path) -> int:
    store = SQLiteStore(str(path))
    await store.open()  # the gateway's own migrations make the schema
    try:
        account, _ = await create_account(
            store,
            "bench",
            balance_milli=10**12,
            api_key=BENCH_KEY,
            api_secret=BENCH_SECRET,
            ratelimit=BucketConfig(HUGE_BUCKET["rate"], HUGE_BUCKET["burst"]),
        )
    finally:
        await store.close()
    return account.id


def _rows(account_id: int, start: int, count: int, total: int, now_ms: int, rng: random.Random):
    oldest = now_ms - SPAN_DAYS * DAY_MS
    for i in range(start, start + count):
        created = oldest + i * SPAN_DAYS * DAY_MS // total  # written in time order, like the gateway
        status = rng.choices(STATUSES, WEIGHTS)[0]
        carrier_id = None if status == "pending" else f"mock-{rng.getrandbits(64):016x}"
        error = "MOCK_REFUSED: mock carrier refused the message" if status == "failed" else None
        yield (
            account_id,
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "138****5678",
            f"{rng.getrandbits(128):032x}",
            "123456",
            "mock",
            status,
            50,
            carrier_id,
            error,
            created,
            created + 200,
            i + 1,
        )


def build(path: Path, total: int, now_ms: int) -> float:
    """Write ``total`` records of one account; return the seconds it took."""
    started = time.perf_counter()
    account_id = asyncio.run(_account(path))
    rng = random.Random(7)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")  # a bulk load: nothing here needs to survive a crash
        for start in range(0, total, CHUNK):
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO records (account_id, message_id, phone, phone_hash, template_id,"
                " provider, status, price_milli, carrier_id, error, created_at, updated_at, seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _rows(account_id, start, min(CHUNK, total - start), total, now_ms, rng),
            )
            db.execute("COMMIT")
        db.execute("UPDATE accounts SET records_seq = ? WHERE id = ?", (total, account_id))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return time.perf_counter() - started


def _query(url: str, now_ms: int, seed: int):
    zone = ZoneInfo("Asia/Shanghai")  # the shipped server.timezone

    def local(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d %H:%M:%S")

    async def call(session: aiohttp.ClientSession, number: int) -> int:
        rng = random.Random(seed * 1_000_003 + number)
        days = rng.randint(1, 7)
        start = now_ms - rng.randint(days, SPAN_DAYS) * DAY_MS
        params = {
            "status": rng.choice(STATUSES),
            "start_time": local(start),
            "end_time": local(start + days * DAY_MS),
            "page": str(rng.randint(1, 5)),
            "per_page": "20",
        }
        async with session.get(url + "/api/sms/records", params=params, headers=HEADERS) as answer:
            await answer.read()
            return answer.status

    return call


async def _drive(url: str, now_ms: int, settings: Settings) -> tuple[list[float], dict[int, int]]:
    await timed_requests(_query(url, now_ms, 0), WARMUP, settings.records_concurrency)
    return await timed_requests(
        _query(url, now_ms, 1), settings.records_requests, settings.records_concurrency
    )


def run(settings: Settings, tmp: Path) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    document = gateway_document(tmp, "records")
    build_seconds = build(Path(document["store"]["path"]), settings.records, now_ms)
    print(f"  {settings.records:,} records written in {build_seconds:.0f} s", flush=True)
    with contextlib.ExitStack() as stack:
        gateway = start_gateway(tmp, "records", document)
        stack.callback(gateway.stop)
        durations, statuses = asyncio.run(_drive(gateway.url, now_ms, settings))
    return {
        **latency_summary(durations),
        "rows": settings.records,
        "build_seconds": round(build_seconds, 1),
        "concurrency": settings.records_concurrency,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }
