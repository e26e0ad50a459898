"""Quotas in SQLite: the limits and the counts live on the account's row, so the reserve's one
conditional UPDATE charges, counts and holds the send to the limits at once.

A count is of the day (and month) it names: a reserve in a later one starts it again from 0; one
that names an earlier one (another process's clock a moment behind at midnight) counts in the
later one rather than going back. Settle gives the carrier's refusals back to the period their
reserve counted them in, if that is still the one counted. The rules: (docs/quotas.md).
"""

from __future__ import annotations

import sqlite3

from gateway.store.sqlite.reader import Connection

__all__ = ["CHARGE", "MIGRATION", "SQLiteQuotas", "give_back", "refusal"]

MIGRATION = """
-- Quotas per account (sqlite/quotas.py): the limits in messages (NULL: none) and what reserves
-- counted in the day and the month last counted ('': none yet), less the carrier's refusals.
ALTER TABLE accounts ADD COLUMN daily_limit INTEGER;
ALTER TABLE accounts ADD COLUMN monthly_limit INTEGER;
ALTER TABLE accounts ADD COLUMN quota_day TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN quota_day_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN quota_month TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN quota_month_sent INTEGER NOT NULL DEFAULT 0
"""

# What the period named already holds (0 for a period not counted yet).
_DAY = "(CASE WHEN quota_day >= ?4 THEN quota_day_sent ELSE 0 END)"
_MONTH = "(CASE WHEN quota_month >= ?5 THEN quota_month_sent ELSE 0 END)"
#: The reserve's charge, counted and held to the limits: ?1 cost, ?2 messages, ?3 account id,
#: ?4 day, ?5 month (``Period``). SET reads the row as it was, as WHERE does.
CHARGE = (
    "UPDATE accounts SET balance_milli = balance_milli - ?1, records_seq = records_seq + ?2,"  # noqa: S608
    f" quota_day_sent = {_DAY} + ?2, quota_day = max(quota_day, ?4),"
    f" quota_month_sent = {_MONTH} + ?2, quota_month = max(quota_month, ?5)"
    " WHERE id = ?3 AND balance_milli >= ?1"
    f" AND (daily_limit IS NULL OR {_DAY} + ?2 <= daily_limit)"
    f" AND (monthly_limit IS NULL OR {_MONTH} + ?2 <= monthly_limit)"
    " RETURNING records_seq, balance_milli, total_sent"
)


def refusal(
    db: sqlite3.Connection, account_id: int, cost: int, count: int, counted: tuple[str, str] | None
) -> str | None:
    """Why a charge wrote nothing: None when the account is unknown or its balance short (so
    always when nothing was ``counted``), else the period whose limit ``count`` more would pass."""
    row = db.execute(
        "SELECT balance_milli, monthly_limit, quota_month, quota_month_sent FROM accounts WHERE id = ?",
        (account_id,),
    ).fetchone()
    if counted is None or row is None or row[0] < cost:
        return None
    _, limit, month, sent = row
    # The longer one first: waiting for the next day would not help.
    monthly = limit is not None and (sent if month >= counted[1] else 0) + count > limit
    return "monthly" if monthly else "daily"


def give_back(db: sqlite3.Connection, account_id: int, counted: tuple[str, str], refused: int) -> None:
    """Settle's refusals no longer count in ``counted``, if it is still the period counted."""
    db.execute(
        "UPDATE accounts SET"
        " quota_day_sent = max(0, quota_day_sent - (CASE WHEN quota_day = ?1 THEN ?3 ELSE 0 END)),"
        " quota_month_sent = max(0, quota_month_sent - (CASE WHEN quota_month = ?2 THEN ?3 ELSE 0 END))"
        " WHERE id = ?4",
        (*counted, refused, account_id),
    )


class SQLiteQuotas:
    """The quota reads of :class:`~gateway.store.sqlite.store.SQLiteStore` (on its reader)."""

    _reader: Connection

    async def month_sent(self, account_id: int, month: str) -> int:
        row = await self._reader.run(
            lambda db: db.execute(
                "SELECT quota_month, quota_month_sent FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
        )
        return row[1] if row and row[0] == month else 0
