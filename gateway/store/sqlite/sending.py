"""The two writes of a send, as functions the writer runs inside its transaction.

``reserve`` charges the account the dearest price of the chain and writes every record
``pending`` before any carrier is called; ``settle`` gives each record its final status and refunds
the difference. Both return what they left the account at, for the store's cache. Records and
settlements cross to the writer process as plain tuples of their fields (``NewRecord``,
``Settlement``), and the account's state comes back as one: tuples pickle several times faster
than objects.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.sqlite import quotas
from gateway.store.sqlite.outbox import write_events
from gateway.store.sqlite.receipts import final_event, finalise, take_early_receipt

__all__ = ["State", "reserve", "settle"]

#: ``AccountState``'s fields: account id, balance, total sent, and the day and its count (or None).
State = tuple[int, int, int, "str | None", "int | None"]


def reserve(
    db: sqlite3.Connection,
    account_id: int,
    records: list[tuple[Any, ...]],
    now_ms: int,
    period: tuple[str, str] | None = None,
) -> State | str | None:
    """Charge and write ``pending`` records (``NewRecord`` fields), counted in ``period`` (a
    ``Period`` as a plain tuple: it pickles faster) within the account's limits. Nothing is
    written if the balance is short (None) or a limit would be passed (its period, ``quotas``)."""
    cost = sum(record[4] for record in records)
    # The charge also takes the account's next record numbers (and counts): no extra statement.
    if period is None:
        charged = db.execute(
            "UPDATE accounts SET balance_milli = balance_milli - ?,"
            " records_seq = records_seq + ? WHERE id = ? AND balance_milli >= ?"
            " RETURNING records_seq, balance_milli, total_sent",
            (cost, len(records), account_id, cost),
        ).fetchall()
    else:
        charged = db.execute(quotas.CHARGE, (cost, len(records), account_id, *period)).fetchall()
    if not charged:
        return quotas.refusal(db, account_id, cost, len(records), period)
    first = charged[0][0] - len(records) + 1
    db.executemany(
        "INSERT INTO records (account_id, seq, message_id, phone, phone_hash, template_id,"
        " provider, status, price_milli, created_at, updated_at, callback_url, segments)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
        [
            (
                account_id,
                first + i,
                message_id,
                phone,
                phone_hash,
                template_id,
                provider,
                price_milli,
                now_ms,
                now_ms,
                callback_url,
                segments,
            )
            for i, (
                message_id,
                phone,
                template_id,
                provider,
                price_milli,
                phone_hash,
                callback_url,
                segments,
            ) in enumerate(records)
        ],
    )
    return account_id, charged[0][1], charged[0][2], None, None


def settle(
    db: sqlite3.Connection,
    account_id: int,
    results: list[tuple[Any, ...]],
    now_ms: int,
    day: str,
    period: tuple[str, str] | None = None,
) -> State | None:
    """Final statuses (``Settlement`` fields), the refund of what was reserved beyond the price,
    the day's count; the refusals given back to ``period`` (``quotas``)."""
    wanted = {result[0]: result for result in results}
    # Only records nobody has settled yet: settling twice must not refund twice. One statement
    # finds them all and one (run for each in C) updates them, however many the batch has.
    rows = db.execute(
        "SELECT id, message_id, price_milli, phone_hash, callback_url, phone, template_id FROM records"  # noqa: S608
        f" WHERE account_id = ? AND message_id IN ({','.join('?' * len(wanted))}) AND status = 'pending'"
        " AND carrier_id IS NULL AND error IS NULL",
        (account_id, *wanted),
    ).fetchall()
    refund = accepted = 0
    updates, early_finals, events = [], [], []
    for record_id, message_id, reserved_milli, phone_hash, url, phone, template_id in rows:
        _, status, provider, price_milli, carrier_id, error, segments, sealed, pull_at, counted = wanted[
            message_id
        ]
        if price_milli > reserved_milli:  # the carrier billed more than was reserved
            price_milli = reserved_milli + _payable(db, account_id, price_milli - reserved_milli, refund)
        refunded = reserved_milli if status == "failed" else 0
        billing = (segments, refunded, sealed, pull_at, counted)
        updates.append((status, provider, price_milli, carrier_id, error, *billing, now_ms, message_id))
        refund += reserved_milli - price_milli
        accepted += status != "failed"
        record = (record_id, account_id, message_id, url, phone, template_id)
        changed = (*record, provider, status, error, price_milli, segments)
        if url:  # the record's first event: its acceptance, or its refusal
            events.append((changed, "failed" if status == "failed" else "accepted", 1))
        if carrier_id and status == "pending":  # pending: its backend has receipts
            # The carrier's receipt may have come before this transaction: apply it now.
            early = take_early_receipt(db, provider, carrier_id, phone_hash)
            if early is not None:
                early_finals.append((*early, record_id))
                if url:  # after its acceptance
                    final = (*record, provider, *early, price_milli, segments)
                    events.append((final, final_event(early[0]), 2))
    db.executemany(
        "UPDATE records SET status = ?, provider = ?, price_milli = ?, carrier_id = ?, error = ?,"
        " segments = ?, refunded_milli = ?, sealed_phone = ?, pull_at = ?, carrier_counted = ?,"
        " updated_at = ? WHERE message_id = ?",
        updates,
    )
    if early_finals:
        finalise(db, early_finals, now_ms)
    if events:
        write_events(db, events, now_ms)
    if period is not None and len(rows) > accepted:
        quotas.give_back(db, account_id, period, len(rows) - accepted)
    return _credit(db, account_id, refund, accepted, day)


def _payable(db: sqlite3.Connection, account_id: int, extra: int, refund: int) -> int:
    """How much of ``extra`` the balance can pay, after the ``refund`` settle has counted so far:
    a balance never goes below zero (rare: a carrier billed more segments than the text counts)."""
    row = db.execute("SELECT balance_milli FROM accounts WHERE id = ?", (account_id,)).fetchone()
    return max(0, min(extra, (row[0] if row else 0) + refund))


def _credit(db: sqlite3.Connection, account_id: int, refund: int, accepted: int, day: str) -> State | None:
    """Settle's refund and counts: what the account is left at."""
    account = db.execute(
        "UPDATE accounts SET balance_milli = balance_milli + ?,"
        " total_sent = total_sent + ? WHERE id = ? RETURNING balance_milli, total_sent",
        (refund, accepted, account_id),
    ).fetchone()
    if account is None:
        return None
    if not accepted:
        return account_id, account[0], account[1], None, None
    sent = db.execute(
        "INSERT INTO daily_sent (account_id, day, sent) VALUES (?, ?, ?)"
        " ON CONFLICT (account_id, day) DO UPDATE SET sent = sent + excluded.sent"
        " RETURNING sent",
        (account_id, day, accepted),
    ).fetchone()
    return account_id, account[0], account[1], day, sent[0]
