"""The SQLite store: durable (WAL, fsync on commit), and never on the event loop.

Each connection lives on a dedicated thread: one writer, whose transactions are whole functions so
concurrent requests cannot interleave inside one, and one reader, which WAL lets read while the
writer writes. Charging is a single conditional UPDATE in the writer's transaction, so no two
requests can both spend the same money.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gateway.store.base import (
    MAX_PARKED_RECEIPTS,
    Account,
    AccountExists,
    AccountState,
    IdempotencyClaim,
    NewAccount,
    NewRecord,
    ReceiptUpdate,
    Record,
    RecordPage,
    RecordQuery,
    Settlement,
    check_updatable,
)
from gateway.store.sqlite import idempotency, sending
from gateway.store.sqlite.migrations import migrate
from gateway.store.sqlite.receipts import apply_receipts
from gateway.store.sqlite.writer import Connection, GroupWriter

__all__ = ["SQLiteStore"]

T = TypeVar("T")

_ACCOUNT_COLUMNS = (
    "id, name, api_key, secret_hash, balance_milli, verification_status, disabled, providers,"
    " rate, burst, total_sent"
)
# ``seq`` is the record's public id, numbered per account; the rowid ``id`` stays internal.
_RECORD_COLUMNS = (
    "seq, message_id, phone, template_id, provider, status, error, created_at, updated_at,"
    " price_milli"
)


def _account(row: tuple) -> Account:
    return Account(
        id=row[0], name=row[1], api_key=row[2], secret_hash=row[3], balance_milli=row[4],
        verification_status=row[5], disabled=bool(row[6]),
        providers=tuple(p for p in row[7].split(",") if p), rate=row[8], burst=row[9],
        total_sent=row[10],
    )


class SQLiteStore:
    def __init__(
        self, path: str, timeout: float = 5.0, *, max_parked_receipts: int = MAX_PARKED_RECEIPTS
    ) -> None:
        self.path = path
        #: At most this many receipts naming no record yet are kept (see ``sqlite/receipts``).
        self.max_parked_receipts = max_parked_receipts
        self._writer = GroupWriter(path, timeout)
        self._reader = Connection(path, timeout, "reader")
        self._listener: Callable[[AccountState], None] | None = None

    def watch(self, listener: Callable[[AccountState], None]) -> None:
        """Have ``listener`` told, on the loop and in commit order, what each committed reserve
        and settle left the account at (``gateway.store.cache`` keeps itself current by it)."""
        self._listener = listener

    def _report(self, state: AccountState | None) -> None:
        if state is not None and self._listener is not None:
            self._listener(state)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """A read on the reader's thread, after every settle this process queued is committed."""
        await self._writer.caught_up()
        return await self._reader.run(work)

    async def open(self) -> None:
        await asyncio.to_thread(Path(self.path).parent.mkdir, parents=True, exist_ok=True)
        await self._writer.run(migrate)

    async def close(self) -> None:
        await self._writer.close()
        await self._reader.close()

    async def ping(self) -> None:
        """Both paths a send needs: a real read, and the write lock (taken and given back)."""
        await self._read(
            lambda db: db.execute("SELECT version FROM schema_migrations LIMIT 1").fetchone()
        )
        await self._writer.run(lambda db: db.executescript("BEGIN IMMEDIATE; ROLLBACK;"))

    async def probe_write(self, now_ms: int) -> None:
        """A real, committed write of about what a send writes (see migration 6)."""
        await self._writer.transaction(lambda db: db.execute(
            "INSERT OR REPLACE INTO readiness_probe VALUES (1, ?, randomblob(16384))", (now_ms,)
        ))

    # accounts

    async def create_account(self, account: NewAccount, now_ms: int) -> Account:
        def insert(db: sqlite3.Connection) -> Account:
            cursor = db.execute(
                "INSERT INTO accounts (name, api_key, secret_hash, balance_milli,"
                " verification_status, providers, rate, burst, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    account.name, account.api_key, account.secret_hash, account.balance_milli,
                    account.verification_status, ",".join(account.providers), account.rate,
                    account.burst, now_ms,
                ),
            )
            return _account(db.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?",  # noqa: S608
                (cursor.lastrowid,),
            ).fetchone())

        try:
            return await self._writer.transaction(insert)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise AccountExists(account.name) from None

    async def account_by_key(self, api_key: str) -> Account | None:
        row = await self._read(lambda db: db.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE api_key = ?", (api_key,)  # noqa: S608
        ).fetchone())
        return _account(row) if row else None

    async def list_accounts(self) -> list[Account]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY id"  # noqa: S608
        ).fetchall())
        return [_account(row) for row in rows]

    async def update_account(self, api_key: str, **changes: object) -> Account | None:
        check_updatable(changes)
        if "providers" in changes:
            changes["providers"] = ",".join(changes["providers"])  # type: ignore[arg-type]
        assignments = ", ".join(f"{column} = ?" for column in changes)
        row = await self._writer.transaction(lambda db: db.execute(
            f"UPDATE accounts SET {assignments} WHERE api_key = ?"  # noqa: S608
            f" RETURNING {_ACCOUNT_COLUMNS}",
            (*changes.values(), api_key),
        ).fetchone())
        return _account(row) if row else None

    async def top_up(self, api_key: str, amount_milli: int) -> Account | None:
        row = await self._writer.transaction(lambda db: db.execute(
            "UPDATE accounts SET balance_milli = balance_milli + ? WHERE api_key = ?"  # noqa: S608
            f" RETURNING {_ACCOUNT_COLUMNS}",
            (amount_milli, api_key),
        ).fetchone())
        return _account(row) if row else None

    async def today_sent(self, account_id: int, day: str) -> int:
        row = await self._read(lambda db: db.execute(
            "SELECT sent FROM daily_sent WHERE account_id = ? AND day = ?", (account_id, day)
        ).fetchone())
        return row[0] if row else 0

    # sending

    async def reserve(self, account_id: int, records: list[NewRecord], now_ms: int) -> bool:
        state = await self._writer.transaction(
            lambda db: sending.reserve(db, account_id, records, now_ms), self._report
        )
        return state is not None

    async def settle(
        self, account_id: int, results: list[Settlement], now_ms: int, day: str
    ) -> None:
        """Queued for the next group commit, not waited for: the caller's answer does not wait on it.

        The records are already on disk as ``pending`` (``reserve``), which is what a crash leaves;
        every later read of this store waits for the settle first (``_read``), so a caller never
        reads its own send as pending once answered.
        """
        self._writer.transaction_unawaited(
            lambda db: sending.settle(db, account_id, results, now_ms, day), self._report,
            f"settlement of {len(results)} records (they stay pending)",
        )

    async def caught_up(self) -> None:
        await self._writer.caught_up()

    async def apply_receipts(
        self, provider: str, receipts: list[ReceiptUpdate], now_ms: int
    ) -> int:
        if not receipts:
            return 0
        return await self._writer.transaction(
            lambda db: apply_receipts(db, provider, receipts, now_ms, self.max_parked_receipts)
        )

    # idempotency keys

    async def claim_idempotency(
        self, account_id: int, key: str, fingerprint: str, token: str, now_ms: int, ttl_ms: int
    ) -> IdempotencyClaim:
        return await self._writer.transaction(lambda db: idempotency.claim(
            db, account_id, key, fingerprint, token, now_ms, ttl_ms
        ))

    async def finish_idempotency(
        self, account_id: int, key: str, token: str, status: int, body: bytes
    ) -> None:
        await self._writer.transaction(
            lambda db: idempotency.finish(db, account_id, key, token, status, body)
        )

    async def release_idempotency(self, account_id: int, key: str, token: str) -> None:
        await self._writer.transaction(
            lambda db: idempotency.release(db, account_id, key, token)
        )

    async def records(self, account_id: int, query: RecordQuery) -> RecordPage:
        where, args = ["account_id = ?"], [account_id]
        for clause, value in (
            ("status = ?", query.status),
            ("created_at >= ?", query.start_ms),
            ("created_at <= ?", query.end_ms),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        condition = " AND ".join(where)

        def read(db: sqlite3.Connection) -> RecordPage:
            db.execute("BEGIN")  # one snapshot for the page and its total
            try:
                rows = db.execute(
                    f"SELECT {_RECORD_COLUMNS} FROM records WHERE {condition}"  # noqa: S608
                    " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                    (*args, query.per_page, (query.page - 1) * query.per_page),
                ).fetchall()
                total = db.execute(
                    f"SELECT COUNT(*) FROM records WHERE {condition}", args  # noqa: S608
                ).fetchone()[0]
            finally:
                db.execute("COMMIT")
            return RecordPage([Record(*row) for row in rows], total)

        return await self._read(read)
