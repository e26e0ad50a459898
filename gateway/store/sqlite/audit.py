"""The audit log in SQLite (migration 8), and finding a record by its message id alone.

``append`` runs in the writer process (a module-level function, so it can be sent there); the
reads run on the reader thread. The log's ids are what the other processes on the same file follow
to drop their cached accounts (``changes_after``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.audit import AuditEntry, AuditPage, decode_changes, encode_changes

__all__ = ["append", "changes_after", "latest_id", "page", "record_owner"]

_COLUMNS = "id, at, actor, action, account_name, api_key, before, after, reason"
_MAX_CHANGES = 1000  # keys read per poll; the rest come with the next


def append(db: sqlite3.Connection, entry: AuditEntry) -> int:
    cursor = db.execute(
        "INSERT INTO audit_log (at, actor, action, account_name, api_key, before, after, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.at_ms,
            entry.actor,
            entry.action,
            entry.account_name,
            entry.api_key,
            encode_changes(entry.before),
            encode_changes(entry.after),
            entry.reason,
        ),
    )
    return int(cursor.lastrowid or 0)


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    entry_id, at, actor, action, name, api_key, before, after, reason = row
    return AuditEntry(
        at, actor, action, name, api_key, decode_changes(before), decode_changes(after), reason, entry_id
    )


def page(db: sqlite3.Connection, number: int, per_page: int) -> AuditPage:
    db.execute("BEGIN")  # one snapshot for the page and its total
    try:
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?",  # noqa: S608
            (per_page, (number - 1) * per_page),
        ).fetchall()
        total = db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    finally:
        db.execute("COMMIT")
    return AuditPage([_entry(row) for row in rows], total)


def latest_id(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM audit_log").fetchone()[0])


def changes_after(db: sqlite3.Connection, after: int) -> list[tuple[int, str]]:
    return db.execute(
        "SELECT id, api_key FROM audit_log WHERE id > ? ORDER BY id LIMIT ?", (after, _MAX_CHANGES)
    ).fetchall()


def record_owner(db: sqlite3.Connection, message_id: str) -> int | None:
    row = db.execute("SELECT account_id FROM records WHERE message_id = ?", (message_id,)).fetchone()
    return row[0] if row else None
