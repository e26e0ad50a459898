"""The SQLite store's own mechanics on a real file: migrations, WAL, index use.

What every backend must do alike (charging, settling, records, receipts) is in test_store_contract.py.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from msgspec.structs import astuple

from gateway.store.callbacks import ENDED_KEPT_MS
from gateway.store.records import NewRecord, ReceiptUpdate, RecordQuery
from gateway.store.sqlite import sending
from gateway.store.sqlite.migrations import MIGRATIONS
from gateway.store.sqlite.store import SQLiteStore
from gateway.store.sqlite.write_process import connect, run_group
from gateway.store.sqlite.writer import GroupWriter
from gateway.store.sqlite.writes import work
from tests.test_store_contract import accepted, new_account, refused

DAY = "2024-05-01"
NOW = 1_714_521_600_000  # 2024-05-01 00:00:00 UTC, in epoch milliseconds


def peek(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Read the file from a connection of our own, as another process would."""
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def new_records(prefix: str, count: int, price_milli: int = 50) -> list[NewRecord]:
    return [NewRecord(f"{prefix}-{i}", "138****8000", "123456", "mock", price_milli) for i in range(count)]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(str(path), timeout=1.0)
    await opened.open()
    yield opened
    await opened.close()


async def balance(store: SQLiteStore, name: str) -> int:
    account = await store.account_by_key(f"sk_{name}")
    assert account is not None
    return account.balance_milli


async def test_migrations_are_recorded_and_run_once(path: Path):
    first = SQLiteStore(str(path))
    await first.open()
    await first.create_account(new_account("kept", 1000), NOW)
    await first.close()
    applied = peek(path, "SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert [version for version, _ in applied] == [version for version, _ in MIGRATIONS]
    again = SQLiteStore(str(path))
    await again.open()  # would fail (table exists) or wipe data if a migration ran twice
    try:
        assert peek(path, "SELECT version, applied_at FROM schema_migrations ORDER BY version") == applied
        assert await balance(again, "kept") == 1000
    finally:
        await again.close()


async def test_upgrading_numbers_existing_records_per_account(path: Path, monkeypatch):
    """A database at schema 4 (one global id) with two accounts' records interleaved: after the
    upgrade each account's records are 1, 2, 3 … in the order they were written, and go on from there."""
    from gateway.store.sqlite import migrations

    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:4])
    db = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrations.migrate(db) == 4
        for name in ("north", "south"):
            db.execute(
                "INSERT INTO accounts (name, api_key, secret_hash, balance_milli,"
                " verification_status, created_at) VALUES (?, ?, 'h', 1000, 'approved', ?)",
                (name, f"sk_{name}", NOW),
            )
        # Global ids 1..7: north 1, 3, 4, 7; south 2, 5, 6 (created_at ties are broken by that id).
        for n, owner in enumerate(("north", "south", "north", "north", "south", "south", "north")):
            db.execute(
                "INSERT INTO records (account_id, message_id, phone, template_id, provider, status,"
                " price_milli, created_at, updated_at) SELECT id, ?, '138****8000', '1', 'mock',"
                " 'success', 50, ?, ? FROM accounts WHERE name = ?",
                (f"{owner}-{n}", NOW + n // 2, NOW + n // 2, owner),
            )
    finally:
        db.close()
    monkeypatch.undo()

    upgraded = SQLiteStore(str(path))
    await upgraded.open()
    try:
        north, south = [await upgraded.account_by_key(f"sk_{name}") for name in ("north", "south")]
        assert north is not None and south is not None
        await upgraded.reserve(north.id, new_records("north-new", 1), NOW + 10)

        async def listed(account_id: int) -> list[tuple[int, str]]:
            page = await upgraded.records(account_id, RecordQuery(per_page=100))
            return [(r.id, r.message_id) for r in page.records]

        assert await listed(north.id) == [
            (5, "north-new-0"),
            (4, "north-6"),
            (3, "north-3"),
            (2, "north-2"),
            (1, "north-0"),
        ]
        assert await listed(south.id) == [(3, "south-5"), (2, "south-4"), (1, "south-1")]
    finally:
        await upgraded.close()
    assert peek(path, "SELECT MAX(version) FROM schema_migrations") == [(MIGRATIONS[-1][0],)]
    assert peek(path, "SELECT name, records_seq FROM accounts ORDER BY id") == [("north", 5), ("south", 3)]
    with pytest.raises(sqlite3.IntegrityError):  # one number per account, enforced by the schema
        peek(
            path,
            "INSERT INTO records (account_id, seq, message_id, phone, template_id, provider,"
            " status, price_milli, created_at, updated_at)"
            " VALUES (1, 1, 'dup', 'x', '1', 'mock', 'success', 0, 0, 0)",
        )


async def test_parked_receipts_stay_under_the_cap(path: Path):
    store = SQLiteStore(str(path), max_parked_receipts=5)
    await store.open()
    try:
        for second in range(4):
            await store.apply_receipts(
                "aliyun",
                [ReceiptUpdate(f"biz-{second}-{i}", "h", True) for i in range(3)],
                NOW + second * 1000,
            )
    finally:
        await store.close()
    kept = peek(path, "SELECT carrier_id FROM early_receipts ORDER BY received_at, carrier_id")
    assert len(kept) == 5
    assert {carrier_id for (carrier_id,) in kept} >= {f"biz-3-{i}" for i in range(3)}  # the newest


async def test_database_is_in_wal_mode(store: SQLiteStore, path: Path):
    assert peek(path, "PRAGMA journal_mode") == [("wal",)]


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (RecordQuery(), "records_by_account_time"),
        (RecordQuery(start_ms=NOW, end_ms=NOW + 60_000, page=3), "records_by_account_time"),
        (RecordQuery(status="failed"), "records_by_account_status_time"),
        (RecordQuery(status="success", start_ms=NOW, end_ms=NOW + 60_000), "records_by_account_status_time"),
    ],
)
async def test_records_queries_use_the_indexes(path: Path, monkeypatch, query: RecordQuery, index: str):
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args, **kwargs) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(sqlite3, "connect", traced)
    store = SQLiteStore(str(path))
    await store.open()
    try:
        account = await store.create_account(new_account("many", 10**9), NOW)
        other = await store.create_account(new_account("noise", 10**9), NOW)
        for owner in (account, other):
            for second in range(20):
                batch = new_records(f"{owner.name}-{second}", 5)
                await store.reserve(owner.id, batch, NOW + second * 1000)
                await store.settle(
                    owner.id,
                    [
                        refused(r.message_id) if i == 0 else accepted(r.message_id)
                        for i, r in enumerate(batch)
                    ],
                    NOW,
                    DAY,
                )
        statements.clear()
        page = await store.records(account.id, query)
    finally:
        await store.close()
    assert page.total >= 1
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "records" in s]
    assert len(reads) == 2, statements  # the page and its total
    for sql in reads:
        steps = [row[3] for row in peek(path, f"EXPLAIN QUERY PLAN {sql}")]
        plan = " | ".join(steps)
        if "COUNT(*)" in sql and index == "records_by_account_time":
            # An account-only count may as well walk the (account_id, seq) index: as small, covering.
            assert index in plan or "COVERING INDEX records_by_account_seq" in plan, plan
        else:
            assert index in plan, plan
        assert all(step.startswith("SEARCH records") for step in steps), plan  # never a SCAN
        assert "TEMP B-TREE" not in plan, plan  # newest-first order comes from the index itself


def create_table(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")


def insert_n(db: sqlite3.Connection, n: int) -> int:
    db.execute("INSERT INTO t VALUES (?)", (n,))
    if n == 7:
        raise ValueError("seven")
    return n


async def test_group_commit_keeps_each_transaction_its_own(path: Path):
    """Writes that arrive together share one commit, but a failing one undoes only itself."""
    writer = GroupWriter(str(path), timeout=1.0)
    await writer.run(create_table)
    insert = functools.partial(work, insert_n)

    results = await asyncio.gather(
        *(writer.transaction(insert(n)) for n in range(20)), return_exceptions=True
    )
    try:
        assert [r for r in results if isinstance(r, ValueError)] == [results[7]]
        assert [r for r in results if not isinstance(r, Exception)] == [n for n in range(20) if n != 7]
        # Every answered write is committed: another connection sees exactly those rows.
        assert peek(path, "SELECT n FROM t ORDER BY n") == [(n,) for n in range(20) if n != 7]
    finally:
        await writer.close()


def insert_slowly(db: sqlite3.Connection, n: int) -> int:
    db.execute("INSERT INTO t VALUES (?)", (n,))
    time.sleep(0.2)  # the writer stalls mid-group: its caller's deadline passes
    return n


def test_a_group_commits_no_work_whose_caller_stopped_waiting(path: Path):
    """A work past its deadline was answered 503: not run, or rolled back before the COMMIT, while
    the works beside it commit."""
    db = connect(str(path), 1.0)
    try:
        create_table(db)
        now = time.monotonic()
        outcomes = run_group(
            db, [work(insert_n, 1), work(insert_slowly, 2), work(insert_n, 3)], [None, now + 0.1, now - 1]
        )
        assert outcomes[0] == (1, None)
        assert all(
            result is None and isinstance(error, sqlite3.OperationalError) for result, error in outcomes[1:]
        ), outcomes
        assert peek(path, "SELECT n FROM t") == [(1,)]
    finally:
        db.close()


async def test_a_write_that_cannot_cross_to_the_writer_process_fails_alone(path: Path):
    """A work the writer process cannot be sent (a lambda) is a caller's bug: it fails at once
    with a TypeError, and the writes queued beside it go through."""
    writer = GroupWriter(str(path), timeout=1.0)
    await writer.run(create_table)
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                writer.transaction(lambda db: None),
                writer.transaction(work(insert_n, 1)),
                return_exceptions=True,
            ),
            10,
        )
        assert isinstance(results[0], TypeError) and results[1] == 1
        assert peek(path, "SELECT n FROM t") == [(1,)]
    finally:
        await writer.close()


def settle_then_fail(db: sqlite3.Connection, account_id: int, results: list, now_ms: int) -> None:
    """A settle whose transaction fails after it wrote (a crash between its statements would too)."""
    sending.settle(db, account_id, results, now_ms, DAY)
    raise RuntimeError("the transaction ends here, before its COMMIT")


async def test_a_status_change_and_its_callback_event_commit_or_roll_back_together(
    store: SQLiteStore, path: Path
):
    """The event is written by the same transaction as the change it reports: never one without
    the other."""
    account = await store.create_account(new_account("hooked", 1000), NOW)
    hook = "https://hooks.example.com/sms"
    await store.reserve(
        account.id, [NewRecord(f"m{n}", "138****8000", "1", "mock", 50, f"h{n}", hook) for n in range(2)], NOW
    )
    db = connect(str(path), 1.0)
    try:
        outcomes = run_group(
            db,
            [
                work(settle_then_fail, account.id, [astuple(accepted("m0"))], NOW + 1),
                work(sending.settle, account.id, [astuple(refused("m1"))], NOW + 1, DAY),
            ],
            [None, None],
        )
    finally:
        db.close()
    assert isinstance(outcomes[0][1], RuntimeError) and outcomes[1][1] is None
    statuses = peek(path, "SELECT message_id, status FROM records ORDER BY message_id")
    assert statuses == [("m0", "pending"), ("m1", "failed")]
    assert peek(path, "SELECT message_id, type FROM callback_outbox") == [("m1", "failed")]


async def test_ended_callback_events_are_dropped_after_a_week_and_dead_ones_kept(
    store: SQLiteStore, path: Path
):
    """The outbox does not grow for ever: delivered and stopped events go a week after they were
    written (as Redis expires them), pending and dead ones stay."""
    account = await store.create_account(new_account("hooked", 10_000), NOW)
    hook = "https://hooks.example.com/sms"
    ids = [f"m{n}" for n in range(4)]
    await store.reserve(
        account.id, [NewRecord(m, "138****8000", "1", "mock", 50, f"h{m}", hook) for m in ids], NOW
    )
    await store.settle(account.id, [accepted(m) for m in ids], NOW, DAY)
    claimed = {e.message_id: e.event_id for e in await store.claim_callbacks(NOW, 1000, 10, "t")}
    ends = [("m0", "delivered"), ("m1", "stopped"), ("m2", "dead")]  # m3 stays pending
    await store.finish_callbacks("t", [(claimed[m], end, None, None) for m, end in ends], NOW + 1)
    assert await store.prune_callbacks(NOW + ENDED_KEPT_MS - 1) == 0  # not a week yet
    assert await store.prune_callbacks(NOW + ENDED_KEPT_MS + 1) == 2
    states = peek(path, "SELECT message_id, state FROM callback_outbox ORDER BY message_id")
    assert states == [("m2", "dead"), ("m3", "pending")]
