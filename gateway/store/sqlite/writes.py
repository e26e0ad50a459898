"""The store's write transactions other than a send's (``sending``), as the writer process runs them.

Each is a module-level function of the connection and plain values, so that ``work(fn, ...)`` can
be pickled down to the writer process (``write_process``). Account rows come back as tuples of
``ACCOUNT_COLUMNS``; the store turns them into ``Account``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar, TypeVarTuple

from gateway.callbacks.urls import join_prefixes, split_prefixes
from gateway.store.base import Account, NewAccount
from gateway.store.sqlite.write_process import Work

__all__ = [
    "ACCOUNT_COLUMNS",
    "AccountRow",
    "account_of",
    "apply_config_secret",
    "insert_account",
    "take_write_lock",
    "top_up",
    "update_account",
    "work",
    "write_probe",
]

ACCOUNT_COLUMNS = (
    "id, name, api_key, secret_hash, balance_milli, verification_status, disabled, providers,"
    " rate, burst, total_sent, callback_url, callback_prefixes, callback_secret, daily_limit, monthly_limit"
)
#: One row of ``ACCOUNT_COLUMNS`` (sqlite3 hands rows back untyped).
AccountRow = tuple[Any, ...]
T = TypeVar("T")
Args = TypeVarTuple("Args")


def account_of(row: AccountRow) -> Account:
    """The account a row of ``ACCOUNT_COLUMNS`` holds."""
    return Account(
        id=row[0],
        name=row[1],
        api_key=row[2],
        secret_hash=row[3],
        balance_milli=row[4],
        verification_status=row[5],
        disabled=bool(row[6]),
        providers=tuple(p for p in row[7].split(",") if p),
        rate=row[8],
        burst=row[9],
        total_sent=row[10],
        callback_url=row[11],
        callback_prefixes=split_prefixes(row[12]),
        callback_secret=row[13],
        daily_limit=row[14],
        monthly_limit=row[15],
    )


def work(function: Callable[[sqlite3.Connection, *Args], T], *args: *Args) -> Work[T]:
    """``function(db, *args)`` as a work the writer process can be sent (``function`` module-level)."""
    return Work(function, args)


def take_write_lock(db: sqlite3.Connection) -> None:
    """Take the write lock and give it back: the writer could write (readiness)."""
    db.executescript("BEGIN IMMEDIATE; ROLLBACK;")


def write_probe(db: sqlite3.Connection, now_ms: int) -> None:
    """A real write of about what a send writes (see migration 6)."""
    db.execute("INSERT OR REPLACE INTO readiness_probe VALUES (1, ?, randomblob(16384))", (now_ms,))


def insert_account(db: sqlite3.Connection, account: NewAccount, now_ms: int) -> AccountRow:
    cursor = db.execute(
        "INSERT INTO accounts (name, api_key, secret_hash, balance_milli,"
        " verification_status, providers, rate, burst, created_at, config_secret_hash,"
        " callback_url, callback_prefixes, daily_limit, monthly_limit)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            account.name,
            account.api_key,
            account.secret_hash,
            account.balance_milli,
            account.verification_status,
            ",".join(account.providers),
            account.rate,
            account.burst,
            now_ms,
            account.config_secret_hash,
            account.callback_url,
            join_prefixes(account.callback_prefixes),
            account.daily_limit,
            account.monthly_limit,
        ),
    )
    row: AccountRow = db.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?",  # noqa: S608
        (cursor.lastrowid,),
    ).fetchone()
    return row


def update_account(db: sqlite3.Connection, api_key: str, changes: dict[str, object]) -> AccountRow | None:
    """``changes``: column -> value, the columns checked by the caller (``check_updatable``)."""
    assignments = ", ".join(f"{column} = ?" for column in changes)
    row: AccountRow | None = db.execute(
        f"UPDATE accounts SET {assignments} WHERE api_key = ?"  # noqa: S608
        f" RETURNING {ACCOUNT_COLUMNS}",
        (*changes.values(), api_key),
    ).fetchone()
    return row


def apply_config_secret(
    db: sqlite3.Connection, api_key: str, expected: str | None, config_hash: str, secret_hash: str | None
) -> AccountRow | None:
    """``Store.apply_config_secret``: one conditional UPDATE, so of concurrent callers one wins."""
    row: AccountRow | None = db.execute(
        "UPDATE accounts SET config_secret_hash = ?, secret_hash = COALESCE(?, secret_hash)"  # noqa: S608
        f" WHERE api_key = ? AND config_secret_hash IS ? RETURNING {ACCOUNT_COLUMNS}",
        (config_hash, secret_hash, api_key, expected),
    ).fetchone()
    return row


def top_up(db: sqlite3.Connection, api_key: str, amount_milli: int) -> AccountRow | None:
    row: AccountRow | None = db.execute(
        "UPDATE accounts SET balance_milli = balance_milli + ? WHERE api_key = ?"  # noqa: S608
        f" RETURNING {ACCOUNT_COLUMNS}",
        (amount_milli, api_key),
    ).fetchone()
    return row
