"""The callback outbox in SQLite: the events ``settle`` and ``apply_receipts`` write in their own
transaction (``write_events``), and the deliverer's claims and finishes, all in the writer.

An event is claimed only when no earlier event of its record is still pending, so a record's
events reach its URL in order. A claim is a lease: it holds the event's ``lease_token`` and moves
its ``next_at`` to the lease's end, so the due index alone says what may be claimed (a crashed
holder's events come due again); only the holder's token finishes it.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

import msgspec

from gateway.store.callbacks import Finish, OutboxEvent

__all__ = [
    "NewEvent",
    "backlog",
    "claim",
    "dead_page",
    "finish",
    "next_sequence",
    "prune",
    "replay",
    "write_events",
]

_json = msgspec.json.Encoder().encode

_COLUMNS = (
    "event_id, account_id, message_id, sequence, type, url, facts, attempts, created_at, next_at,"
    " state, last_error"
)

#: A finish's outcome as the event's state, where they differ: tried again later, or handed back.
_STATE = {"retry": "pending", "defer": "pending"}

#: What an event is made of, as ``write_events`` takes it: the record's id, account, message id,
#: callback URL, masked phone and template, then the change's provider, status, error, price and
#: segments.
NewEvent = tuple[int, int, str, str, str, str, str, str, "str | None", int, int]

_WRITE = (
    "INSERT INTO callback_outbox (event_id, account_id, record_id, message_id, sequence, type, url,"
    " facts, created_at, next_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')"
)


_FINISH = (
    "UPDATE callback_outbox SET state = ?, next_at = COALESCE(?, next_at),"
    " last_error = CASE WHEN ? THEN ? ELSE last_error END, attempts = attempts + ?,"
    " lease_token = NULL WHERE record_id = ? AND sequence = ? AND event_id = ?"
    " AND lease_token = ? AND state = 'pending'"
)


def write_events(db: sqlite3.Connection, events: list[tuple[NewEvent, str, int]], now_ms: int) -> None:
    """An outbox event for each (record as changed, type, sequence), in order, inside the caller's
    transaction. The callers have the record's fields at hand: a plain insert, no read."""
    rows = []
    for (
        record_id,
        account_id,
        message_id,
        url,
        phone,
        template,
        provider,
        status,
        error,
        price,
        segments,
    ), kind, sequence in events:
        facts = {
            "phone": phone,
            "template_id": template,
            "provider": provider,
            "status": status,
            "error": error,
            "price_milli": price,
            "segments": segments,
            "occurred_ms": now_ms,
        }
        event_id = f"{record_id}-{sequence}-{secrets.token_hex(8)}"
        rows.append(
            (
                event_id,
                account_id,
                record_id,
                message_id,
                sequence,
                kind,
                url,
                _json(facts).decode(),
                now_ms,
                now_ms,
            )
        )
    db.executemany(_WRITE, rows)


def next_sequence(db: sqlite3.Connection, record_id: int) -> int:
    """The sequence the record's next event takes (a receipt's: after its acceptance)."""
    (sequence,) = db.execute(
        "SELECT COALESCE(MAX(sequence), 0) + 1 FROM callback_outbox WHERE record_id = ?", (record_id,)
    ).fetchone()
    return int(sequence)


def _event(row: tuple[Any, ...], api_key: str = "", due_ms: int | None = None) -> OutboxEvent:
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
        due if due_ms is None else due_ms,
        state,
        error,
        api_key,
    )


def claim(db: sqlite3.Connection, now_ms: int, lease_ms: int, limit: int, token: str) -> list[OutboxEvent]:
    """``CallbackOutbox.claim_callbacks``: due (unleased, or the lease ran out), first pending of
    their record, soonest due first."""
    due = db.execute(
        "SELECT id, next_at FROM callback_outbox e WHERE state = 'pending' AND next_at <= ?"
        " AND NOT EXISTS (SELECT 1 FROM callback_outbox p WHERE p.record_id = e.record_id"
        " AND p.sequence < e.sequence AND p.state = 'pending') ORDER BY next_at LIMIT ?",
        (now_ms, limit),
    ).fetchall()
    if not due:
        return []
    rows = db.execute(
        "UPDATE callback_outbox SET lease_token = ?, next_at = ?"  # noqa: S608
        f" WHERE id IN ({','.join('?' * len(due))}) RETURNING id, {_COLUMNS}",
        (token, now_ms + lease_ms, *(event_id for event_id, _ in due)),
    ).fetchall()
    keys = dict(
        db.execute(
            f"SELECT id, api_key FROM accounts WHERE id IN ({','.join({str(row[2]) for row in rows})})"  # noqa: S608
        ).fetchall()
    )
    was_due = dict(due)
    return sorted(
        (_event(row[1:], keys.get(row[2], ""), was_due[row[0]]) for row in rows),
        key=lambda event: (event.next_ms, event.sequence),
    )


def finish(db: sqlite3.Connection, token: str, finishes: list[Finish], now_ms: int) -> None:
    """``CallbackOutbox.finish_callbacks``; only the lease's holder, only a pending event."""
    rows: list[tuple[Any, ...]] = []
    stops: list[tuple[Any, ...]] = []
    for event_id, outcome, next_ms, error in finishes:
        record_id, _, rest = event_id.partition("-")
        sequence, _, _ = rest.partition("-")
        if record_id.isdigit() and sequence.isdigit():  # else not an event of this store's
            tried = outcome != "defer"
            state = _STATE.get(outcome, outcome)
            row = (state, next_ms, tried, error, int(tried), int(record_id), int(sequence), event_id, token)
            (stops if outcome == "stopped" else rows).append(row)
    db.executemany(_FINISH, rows)
    for row in stops:  # a 410: the URL is gone for this record, its later events too
        if db.execute(_FINISH, row).rowcount:
            db.execute(
                "UPDATE callback_outbox SET state = 'stopped', last_error = ?"
                " WHERE record_id = ? AND sequence > ? AND state = 'pending'",
                (row[3], row[5], row[6]),
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
        " lease_token = NULL WHERE account_id = ? AND state = 'dead'",
        (now_ms, now_ms, account_id),
    ).rowcount


def prune(db: sqlite3.Connection, before_ms: int, limit: int) -> int:
    """Up to ``limit`` delivered or stopped events created before ``before_ms``, oldest first, gone.
    Bounded, so one prune never holds the writer for long: the deliverer prunes again soon."""
    return db.execute(
        "DELETE FROM callback_outbox WHERE id IN (SELECT id FROM callback_outbox"
        " WHERE state IN ('delivered', 'stopped') AND created_at < ? ORDER BY id LIMIT ?)",
        (before_ms, limit),
    ).rowcount
