"""Billing in SQLite: the status pull's records, giving up on receipts, leases, usage.

The writes are module-level functions the writer process runs (``writes.work``); ``SQLiteBilling``
is the part of :class:`~gateway.store.sqlite.store.SQLiteStore` that sends them there, or reads on
the reader thread. Records awaiting a pull are found through a partial index of ``pull_at``, which
only records waiting for a receipt have.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.billing import NO_RECEIPT_ERROR, USAGE_BUCKET_MS, Awaiting, UsageBucket
from gateway.store.sqlite.outbox import NewEvent, next_sequence, write_events
from gateway.store.sqlite.reader import Connection
from gateway.store.sqlite.writer import GroupWriter
from gateway.store.sqlite.writes import work

__all__ = ["SQLiteBilling"]

_EVENT_COLUMNS = (
    "id, account_id, message_id, callback_url, phone, template_id, provider, status, error,"
    " price_milli, segments"
)


def awaiting(db: sqlite3.Connection, provider: str, now_ms: int, limit: int) -> list[Awaiting]:
    rows = db.execute(
        "SELECT account_id, id, carrier_id, sealed_phone, message_id, created_at FROM records"
        " WHERE provider = ? AND pull_at IS NOT NULL AND pull_at <= ? AND sealed_phone IS NOT NULL"
        " ORDER BY pull_at LIMIT ?",
        (provider, now_ms, limit),
    ).fetchall()
    return [Awaiting(*row) for row in rows]


def pulled(db: sqlite3.Connection, record_ids: list[int], next_pull_ms: int) -> None:
    db.executemany(
        "UPDATE records SET pull_at = ? WHERE id = ? AND pull_at IS NOT NULL",
        [(next_pull_ms, record_id) for record_id in record_ids],
    )


def give_up(
    db: sqlite3.Connection, provider: str, sent_before_ms: int, refund: bool, now_ms: int, limit: int
) -> int:
    """``Billing.give_up_receipts``, in one transaction: records, refunds, events."""
    ids = [
        row[0]
        for row in db.execute(
            "SELECT id FROM records WHERE provider = ? AND pull_at IS NOT NULL AND created_at < ? LIMIT ?",
            (provider, sent_before_ms, limit),
        )
    ]
    if not ids:
        return 0
    marks = "sealed_phone = NULL, pull_at = NULL, no_receipt = 1, updated_at = ?"
    if refund:
        marks += ", status = 'failed', error = ?, refunded_milli = price_milli, price_milli = 0"
    given: list[Any] = []
    for record_id in ids:
        args = (now_ms, NO_RECEIPT_ERROR) if refund else (now_ms,)
        before = db.execute("SELECT price_milli FROM records WHERE id = ?", (record_id,)).fetchone()[0]
        row = db.execute(
            f"UPDATE records SET {marks} WHERE id = ? RETURNING {_EVENT_COLUMNS}",  # noqa: S608
            (*args, record_id),
        ).fetchone()
        given.append((row, before))
    if refund:
        db.executemany(
            "UPDATE accounts SET balance_milli = balance_milli + ? WHERE id = ?",
            [(before, row[1]) for row, before in given],
        )
    kind = "failed" if refund else "no_receipt"
    events: list[tuple[NewEvent, str, int]] = [
        (row, kind, next_sequence(db, row[0])) for row, _ in given if row[3]
    ]
    if events:
        write_events(db, events, now_ms)
    return len(given)


def take_lease(db: sqlite3.Connection, name: str, owner: str, now_ms: int, ttl_ms: int) -> bool:
    held = db.execute(
        "INSERT INTO leases (name, owner, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
        " SET owner = excluded.owner, until = excluded.until"
        " WHERE leases.until <= ? OR leases.owner = excluded.owner RETURNING owner",
        (name, owner, now_ms + ttl_ms, now_ms),
    ).fetchone()
    return held is not None


def usage(db: sqlite3.Connection, start_ms: int, end_ms: int, account_id: int | None) -> list[UsageBucket]:
    where = "created_at >= ? AND created_at < ?" + ("" if account_id is None else " AND account_id = ?")
    args = (start_ms, end_ms) if account_id is None else (start_ms, end_ms, account_id)
    rows = db.execute(
        f"SELECT account_id, provider, created_at / {USAGE_BUCKET_MS} * {USAGE_BUCKET_MS} AS bucket,"  # noqa: S608
        " COUNT(*), SUM(segments), SUM(price_milli), SUM(refunded_milli) FROM records"
        f" WHERE {where} GROUP BY account_id, provider, bucket",
        args,
    ).fetchall()
    return [UsageBucket(*row) for row in rows]


class SQLiteBilling:
    """``gateway.store.billing.Billing`` for the SQLite store (its writer and reader)."""

    _writer: GroupWriter
    _reader: Connection

    async def awaiting_receipts(self, provider: str, now_ms: int, limit: int) -> list[Awaiting]:
        return await self._reader.run(lambda db: awaiting(db, provider, now_ms, limit))

    async def pulled(self, provider: str, asked: list[Awaiting], next_pull_ms: int) -> None:
        if asked:
            ids = [record.record_id for record in asked]
            await self._writer.transaction(work(pulled, ids, next_pull_ms))

    async def give_up_receipts(
        self, provider: str, sent_before_ms: int, refund: bool, now_ms: int, limit: int
    ) -> int:
        return await self._writer.transaction(work(give_up, provider, sent_before_ms, refund, now_ms, limit))

    async def take_lease(self, name: str, owner: str, now_ms: int, ttl_ms: int) -> bool:
        return await self._writer.transaction(work(take_lease, name, owner, now_ms, ttl_ms))

    async def usage(self, start_ms: int, end_ms: int, account_id: int | None) -> list[UsageBucket]:
        return await self._reader.run(lambda db: usage(db, start_ms, end_ms, account_id))
