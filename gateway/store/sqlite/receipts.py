"""Delivery receipts in SQLite: the statements both ``apply_receipts`` and ``settle`` run.

Both run in the store's single writer process, so a receipt and settle never interleave: a receipt is
either applied to its record or parked in ``early_receipts`` for settle to pick up. Parked receipts
are bounded by age (:data:`EARLY_RECEIPT_TTL_MS`) and by number (:data:`MAX_PARKED_RECEIPTS`), and
past the cap the *oldest* go, so a burst of strays cannot lock out the useful ones.
Why the oldest: (docs/sending.md, "Reports that come before their send is settled").
"""

from __future__ import annotations

import sqlite3

from gateway.store.records import EARLY_RECEIPT_TTL_MS, MAX_PARKED_RECEIPTS, ReceiptsApplied, ReceiptUpdate
from gateway.store.sqlite.outbox import NewEvent, next_sequence, write_events

__all__ = ["apply_receipts", "finalise", "take_early_receipt"]

_MATCH = "provider = ? AND carrier_id = ? AND phone_hash = ?"


def _final(receipt: ReceiptUpdate) -> tuple[str, str | None]:
    return ("success", None) if receipt.delivered else ("failed", receipt.error)


def apply_receipts(
    db: sqlite3.Connection,
    provider: str,
    receipts: list[ReceiptUpdate],
    now_ms: int,
    cap: int = MAX_PARKED_RECEIPTS,
) -> ReceiptsApplied:
    """Finalise the pending records the receipts name; park the receipts that name none yet, at
    most ``cap`` in all (the oldest are dropped)."""
    changed = 0
    early: list[ReceiptUpdate] = []
    events: list[tuple[NewEvent, str, int]] = []
    recounted: list[tuple[int, int]] = []
    for receipt in receipts:
        key = (provider, receipt.carrier_id, receipt.phone_hash)
        if receipt.segments:
            recounted += _recount(db, key, receipt.segments)
        # Only a pending record moves: the first final word wins, later pushes are no-ops.
        moved = db.execute(
            f"UPDATE records SET status = ?, error = ?, updated_at = ?, sealed_phone = NULL,"  # noqa: S608
            f" pull_at = NULL WHERE {_MATCH} AND status = 'pending' RETURNING id, account_id, message_id,"
            " callback_url, phone, template_id, provider, status, error, price_milli, segments",
            (*_final(receipt), now_ms, *key),
        ).fetchall()
        updated = len(moved)
        changed += updated
        events += [
            (record, final_event(record[7]), next_sequence(db, record[0])) for record in moved if record[3]
        ]
        if (
            not updated
            and db.execute(
                f"SELECT 1 FROM records WHERE {_MATCH} LIMIT 1",  # noqa: S608
                key,
            ).fetchone()
            is None
        ):
            early.append(receipt)
    if events:
        write_events(db, events, now_ms)
    if early:
        db.execute("DELETE FROM early_receipts WHERE received_at < ?", (now_ms - EARLY_RECEIPT_TTL_MS,))
        db.executemany(
            "INSERT OR IGNORE INTO early_receipts (provider, carrier_id, phone_hash, delivered,"
            " error, received_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(provider, r.carrier_id, r.phone_hash, int(r.delivered), r.error, now_ms) for r in early],
        )
        # The oldest first; ties (one push) in key order. Parking is rare, and the table small.
        db.execute(
            "DELETE FROM early_receipts WHERE (provider, carrier_id, phone_hash) IN ("
            " SELECT provider, carrier_id, phone_hash FROM early_receipts"
            " ORDER BY received_at LIMIT max(0, (SELECT COUNT(*) FROM early_receipts) - ?))",
            (cap,),
        )
    return ReceiptsApplied(changed, recounted)


def _recount(db: sqlite3.Connection, key: tuple[str, str, str], segments: int) -> list[tuple[int, int]]:
    """Re-price the records ``key`` names by the carrier's count, once (the count is the carrier's
    from then on, so a second receipt changes nothing); the account pays or gets back the
    difference, never going below zero. (ours, theirs) of each record whose count differed."""
    rows = db.execute(
        f"SELECT id, account_id, segments, price_milli FROM records WHERE {_MATCH}"  # noqa: S608
        " AND carrier_counted = 0",
        key,
    ).fetchall()
    differed = []
    for record_id, account_id, ours, price in rows:
        unit = price // ours if ours else 0
        owed = unit * segments - price
        if owed > 0:  # what the balance can still pay: it never goes negative
            (balance,) = db.execute(
                "SELECT balance_milli FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
            owed = min(owed, balance)
        db.execute("UPDATE accounts SET balance_milli = balance_milli - ? WHERE id = ?", (owed, account_id))
        db.execute(
            "UPDATE records SET segments = ?, price_milli = ?, carrier_counted = 1 WHERE id = ?",
            (segments, price + owed, record_id),
        )
        if ours != segments:
            differed.append((ours, segments))
    return differed


def finalise(db: sqlite3.Connection, finals: list[tuple[str, str | None, int]], now_ms: int) -> None:
    """Apply (status, error, record id) of receipts that came before settle (whose events settle
    writes)."""
    db.executemany(
        "UPDATE records SET status = ?, error = ?, updated_at = ?, sealed_phone = NULL, pull_at = NULL"
        " WHERE id = ?",
        [(status, error, now_ms, record_id) for status, error, record_id in finals],
    )


def final_event(status: str) -> str:
    """The event a record's final status is reported as."""
    return "delivered" if status == "success" else "failed"


def take_early_receipt(
    db: sqlite3.Connection, provider: str, carrier_id: str, phone_hash: str
) -> tuple[str, str | None] | None:
    """The (status, error) a parked receipt gives this record, removing it; None if none came."""
    rows = db.execute(
        f"DELETE FROM early_receipts WHERE {_MATCH} RETURNING delivered, error",  # noqa: S608
        (provider, carrier_id, phone_hash),
    ).fetchall()
    if not rows:
        return None
    delivered, error = rows[0]
    return ("success", None) if delivered else ("failed", error)
