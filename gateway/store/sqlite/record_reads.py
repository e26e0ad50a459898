"""Reading send records back from SQLite: an account's pages, and records by their message ids.

Apart from the store because these are the only reads that build their SQL from a query; they run
on the reader thread, which WAL lets read while the writer writes.
"""

from __future__ import annotations

import sqlite3

from gateway.store.records import Record, RecordPage, RecordQuery

__all__ = ["by_message_ids", "page"]

# ``seq`` is the record's public id, numbered per account; the rowid ``id`` stays internal.
_RECORD_COLUMNS = (
    "seq, message_id, phone, template_id, provider, status, error, created_at, updated_at,"
    " price_milli, carrier_id, callback_url, segments, refunded_milli, no_receipt"
)


def page(db: sqlite3.Connection, account_id: int, query: RecordQuery) -> RecordPage:
    """The account's records ``query`` asks for, newest first, and how many match in all."""
    where = ["account_id = ?"]
    args: list[str | int] = [account_id]
    for clause, value in (
        ("status = ?", query.status),
        ("created_at >= ?", query.start_ms),
        ("created_at <= ?", query.end_ms),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)
    condition = " AND ".join(where)
    db.execute("BEGIN")  # one snapshot for the page and its total
    try:
        rows = db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE {condition}"  # noqa: S608
            " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            (*args, query.per_page, (query.page - 1) * query.per_page),
        ).fetchall()
        total = db.execute(
            f"SELECT COUNT(*) FROM records WHERE {condition}",  # noqa: S608
            args,
        ).fetchone()[0]
    finally:
        db.execute("COMMIT")
    return RecordPage([Record(*row) for row in rows], total)


def by_message_ids(db: sqlite3.Connection, account_id: int, message_ids: list[str]) -> list[Record]:
    """The account's records with these message ids, in that order; unknown ids are left out."""
    rows = db.execute(
        f"SELECT {_RECORD_COLUMNS} FROM records WHERE account_id = ?"  # noqa: S608
        f" AND message_id IN ({','.join('?' * len(message_ids))})",
        (account_id, *message_ids),
    ).fetchall()
    found = {row[1]: Record(*row) for row in rows}
    return [found[message_id] for message_id in message_ids if message_id in found]
