"""The callback outbox in SQLite: the events ``settle`` and ``apply_receipts`` write in their own
transaction (``write_events``), and the deliverer's claims and finishes, all in the writer.

An event is claimed only when no earlier event of its record is still pending, so a record's
events reach its URL in order; a claim is a lease (``lease_until``), and only its holder's token
finishes it.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import replace
from typing import Any

from gateway.store.callbacks import Finish, OutboxEvent

__all__ = ["backlog", "claim", "dead_page", "finish", "replay", "write_events"]

_COLUMNS = (
    "event_id, account_id, message_id, sequence, type, url, facts, attempts, created_at, next_at,"
    " state, last_error"
)

#: A finish's outcome as the event's state, where they differ: tried again later, or handed back.
_STATE = {"retry": "pending", "defer": "pending"}

#: One event per (message id, type): its facts are the record as this transaction left it.
_WRITE = (
    "INSERT INTO callback_outbox (event_id, account_id, message_id, sequence, type, url, facts,"
    " created_at, next_at, state)"
    " SELECT ?, account_id, message_id,"
    " (SELECT COALESCE(MAX(sequence), 0) + 1 FROM callback_outbox o WHERE o.message_id = r.message_id),"
    " ?, callback_url, json_object('phone', phone, 'template_id', template_id, 'provider', provider,"
    " 'status', status, 'error', error, 'price_milli', price_milli, 'occurred_ms', ?), ?, ?, 'pending'"
    " FROM records r WHERE message_id = ? AND callback_url IS NOT NULL"
)


def write_events(db: sqlite3.Connection, events: list[tuple[str, str]], now_ms: int) -> None:
    """An outbox event for each (message id, type), in order, inside the caller's transaction;
    a record without a callback URL gets none."""
    db.executemany(
        _WRITE, [(uuid.uuid4().hex, kind, now_ms, now_ms, now_ms, message_id) for message_id, kind in events]
    )


def _event(row: tuple[Any, ...]) -> OutboxEvent:
    event_id, account_id, message_id, sequence, kind, url, facts, attempts, created, due, state, error = row
    return OutboxEvent(
        event_id,
        account_id,
        message_id,
        sequence,
        kind,
        url,
        facts.encode(),
        attempts,
        created,
        due,
        state,
        error,
    )


def claim(db: sqlite3.Connection, now_ms: int, lease_ms: int, limit: int, token: str) -> list[OutboxEvent]:
    """``CallbackOutbox.claim_callbacks``: due, unleased, first pending of their record."""
    rows = db.execute(
        f"UPDATE callback_outbox SET lease_token = ?, lease_until = ? WHERE event_id IN ("  # noqa: S608
        " SELECT event_id FROM callback_outbox e WHERE state = 'pending' AND next_at <= ?"
        " AND lease_until <= ? AND NOT EXISTS (SELECT 1 FROM callback_outbox p"
        " WHERE p.message_id = e.message_id AND p.sequence < e.sequence AND p.state = 'pending')"
        f" ORDER BY next_at LIMIT ?) RETURNING {_COLUMNS}",
        (token, now_ms + lease_ms, now_ms, now_ms, limit),
    ).fetchall()
    keys = dict(
        db.execute(
            f"SELECT id, api_key FROM accounts WHERE id IN ({','.join('?' * len(rows))})",  # noqa: S608
            [row[1] for row in rows],
        ).fetchall()
    )
    return sorted(
        (replace(_event(row), api_key=keys.get(row[1], "")) for row in rows),
        key=lambda event: (event.next_ms, event.sequence),
    )


def finish(db: sqlite3.Connection, token: str, finishes: list[Finish], now_ms: int) -> None:
    """``CallbackOutbox.finish_callbacks``; only the lease's holder, only a pending event."""
    stops = []
    for event_id, outcome, next_ms, error in finishes:
        tried = outcome != "defer"
        finished = db.execute(
            "UPDATE callback_outbox SET state = ?, next_at = COALESCE(?, next_at),"
            " last_error = CASE WHEN ? THEN ? ELSE last_error END, attempts = attempts + ?,"
            " lease_token = NULL, lease_until = 0"
            " WHERE event_id = ? AND lease_token = ? AND state = 'pending' RETURNING message_id, sequence",
            (_STATE.get(outcome, outcome), next_ms, tried, error, int(tried), event_id, token),
        ).fetchone()
        if finished is not None and outcome == "stopped":  # the URL is gone for this record
            stops.append((error, *finished))
    db.executemany(
        "UPDATE callback_outbox SET state = 'stopped', last_error = ?"
        " WHERE message_id = ? AND sequence > ? AND state = 'pending'",
        stops,
    )


def backlog(db: sqlite3.Connection, now_ms: int) -> tuple[int, float]:
    count, oldest = db.execute(
        "SELECT COUNT(*), MIN(created_at) FROM callback_outbox WHERE state = 'pending'"
    ).fetchone()
    return count, max(0, now_ms - oldest) / 1000 if oldest is not None else 0.0


def dead_page(
    db: sqlite3.Connection, account_id: int, page: int, per_page: int
) -> tuple[list[OutboxEvent], int]:
    db.execute("BEGIN")  # one snapshot for the page and its total
    try:
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM callback_outbox WHERE account_id = ? AND state = 'dead'"  # noqa: S608
            " ORDER BY created_at DESC, sequence DESC LIMIT ? OFFSET ?",
            (account_id, per_page, (page - 1) * per_page),
        ).fetchall()
        total = db.execute(
            "SELECT COUNT(*) FROM callback_outbox WHERE account_id = ? AND state = 'dead'", (account_id,)
        ).fetchone()[0]
    finally:
        db.execute("COMMIT")
    return [_event(row) for row in rows], total


def replay(db: sqlite3.Connection, account_id: int, now_ms: int) -> int:
    """Dead events pending again, due now, with a fresh 24 h before they can die again."""
    return db.execute(
        "UPDATE callback_outbox SET state = 'pending', next_at = ?, created_at = ?, attempts = 0,"
        " lease_token = NULL, lease_until = 0 WHERE account_id = ? AND state = 'dead'",
        (now_ms, now_ms, account_id),
    ).rowcount
