"""The SQLite store: durable (WAL, fsync on commit), and never on the event loop.

The writer is a process of its own (``writer``/``write_process``), whose transactions are whole
functions so concurrent requests cannot interleave inside one; the reader a thread of its own,
which WAL lets read while the writer writes. Charging is a single conditional UPDATE in the
writer's transaction, so no two requests can both spend the same money.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import cast

from msgspec.structs import astuple

from gateway.callbacks.urls import join_prefixes
from gateway.store.audit import AuditEntry, AuditPage
from gateway.store.base import (
    Account,
    AccountExists,
    AccountState,
    IdempotencyClaim,
    NewAccount,
    check_updatable,
)
from gateway.store.callbacks import ENDED_KEPT_MS, Finish, OutboxEvent, refuse_unknown_outcomes
from gateway.store.quotas import Period, QuotaExceeded
from gateway.store.records import (
    MAX_PARKED_RECEIPTS,
    NewRecord,
    ReceiptsApplied,
    ReceiptUpdate,
    Record,
    RecordPage,
    RecordQuery,
    Settlement,
)
from gateway.store.sqlite import audit, idempotency, outbox, record_reads, sending
from gateway.store.sqlite.billing import SQLiteBilling
from gateway.store.sqlite.migrations import migrate
from gateway.store.sqlite.quotas import SQLiteQuotas
from gateway.store.sqlite.reader import Connection
from gateway.store.sqlite.receipts import apply_receipts
from gateway.store.sqlite.writer import GroupWriter
from gateway.store.sqlite.writes import (
    ACCOUNT_COLUMNS,
    AccountRow,
    account_of,
    apply_config_secret,
    insert_account,
    take_write_lock,
    top_up,
    update_account,
    work,
    write_probe,
)

__all__ = ["SQLiteStore"]

#: How often ``account_changes`` looks for other processes' changes to accounts, in seconds.
CHANGES_POLL_SECONDS = 0.1
#: Ended callback events dropped per prune: a few milliseconds of the writer at a time.
PRUNE_BATCH = 5_000


class SQLiteStore(SQLiteBilling, SQLiteQuotas):
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

    def _report(self, state: sending.State | str | None) -> None:
        if isinstance(state, tuple) and self._listener is not None:  # a str: a quota refused it
            self._listener(AccountState(*state))

    async def open(self) -> None:
        await asyncio.to_thread(Path(self.path).parent.mkdir, parents=True, exist_ok=True)
        await self._writer.run(migrate, bounded=False)  # a big database's migration takes its time

    async def close(self) -> None:
        await self._writer.close()
        await self._reader.close()

    async def ping(self) -> None:
        """Both paths a send needs: a real read, and the write lock (taken and given back)."""
        await self._reader.run(
            lambda db: db.execute("SELECT version FROM schema_migrations LIMIT 1").fetchone()
        )
        await self._writer.run(take_write_lock)

    async def probe_write(self, now_ms: int) -> None:
        """A real, committed write of about what a send writes (see migration 6)."""
        await self._writer.transaction(work(write_probe, now_ms))

    # accounts

    async def create_account(self, account: NewAccount, now_ms: int) -> Account:
        try:
            return account_of(await self._writer.transaction(work(insert_account, account, now_ms)))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise AccountExists(account.name) from None

    async def account_by_key(self, api_key: str) -> Account | None:
        row = await self._reader.run(
            lambda db: db.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE api_key = ?",  # noqa: S608
                (api_key,),
            ).fetchone()
        )
        return account_of(row) if row else None

    async def list_accounts(self) -> list[Account]:
        rows = await self._reader.run(
            lambda db: db.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"  # noqa: S608
            ).fetchall()
        )
        return [account_of(row) for row in rows]

    async def update_account(self, api_key: str, **changes: object) -> Account | None:
        check_updatable(changes)
        if "providers" in changes:
            # ``**changes`` is untyped in the Store protocol; providers come as names (gateway.accounts.rules)
            changes["providers"] = ",".join(cast("Iterable[str]", changes["providers"]))
        if "callback_prefixes" in changes:
            changes["callback_prefixes"] = join_prefixes(cast("Iterable[str]", changes["callback_prefixes"]))
        row = await self._writer.transaction(work(update_account, api_key, changes))
        return account_of(row) if row else None

    async def top_up(self, api_key: str, amount_milli: int) -> Account | None:
        row = await self._writer.transaction(work(top_up, api_key, amount_milli))
        return account_of(row) if row else None

    async def today_sent(self, account_id: int, day: str) -> int:
        row = await self._reader.run(
            lambda db: db.execute(
                "SELECT sent FROM daily_sent WHERE account_id = ? AND day = ?", (account_id, day)
            ).fetchone()
        )
        return row[0] if row else 0

    async def config_secret_hash(self, api_key: str) -> str | None:
        row = await self._reader.run(
            lambda db: db.execute(
                "SELECT config_secret_hash FROM accounts WHERE api_key = ?", (api_key,)
            ).fetchone()
        )
        return row[0] if row else None

    async def apply_config_secret(
        self, api_key: str, expected: str | None, config_hash: str, secret_hash: str | None
    ) -> Account | None:
        row = await self._writer.transaction(
            work(apply_config_secret, api_key, expected, config_hash, secret_hash)
        )
        return account_of(row) if row else None

    # sending

    async def reserve(
        self, account_id: int, records: list[NewRecord], now_ms: int, counted: Period | None = None
    ) -> bool:
        period = None if counted is None else (counted.day, counted.month)  # a tuple pickles faster
        state = await self._writer.transaction(
            work(sending.reserve, account_id, [astuple(record) for record in records], now_ms, period),
            self._report,
        )
        if isinstance(state, str):
            raise QuotaExceeded(state)
        return state is not None

    async def settle(
        self, account_id: int, results: list[Settlement], now_ms: int, day: str, counted: Period | None = None
    ) -> None:
        # The carrier has been called: a settle lands even after its caller stopped waiting.
        period = None if counted is None else (counted.day, counted.month)
        await self._writer.transaction(
            work(sending.settle, account_id, [astuple(result) for result in results], now_ms, day, period),
            self._report,
            keep_late=True,
        )

    async def apply_receipts(
        self, provider: str, receipts: list[ReceiptUpdate], now_ms: int
    ) -> ReceiptsApplied:
        if not receipts:
            return ReceiptsApplied(0, [])
        return await self._writer.transaction(
            work(apply_receipts, provider, receipts, now_ms, self.max_parked_receipts)
        )

    # idempotency keys

    async def claim_idempotency(
        self, account_id: int, key: str, fingerprint: str, token: str, now_ms: int, ttl_ms: int, lease_ms: int
    ) -> IdempotencyClaim:
        return await self._writer.transaction(
            work(idempotency.claim, account_id, key, fingerprint, token, now_ms, ttl_ms, lease_ms)
        )

    async def finish_idempotency(
        self, account_id: int, key: str, token: str, status: int, body: bytes
    ) -> None:
        await self._writer.transaction(
            work(idempotency.finish, account_id, key, token, status, body), keep_late=True
        )

    async def release_idempotency(self, account_id: int, key: str, token: str) -> None:
        await self._writer.transaction(work(idempotency.release, account_id, key, token), keep_late=True)

    async def records(self, account_id: int, query: RecordQuery) -> RecordPage:
        return await self._reader.run(lambda db: record_reads.page(db, account_id, query))

    async def find_records(self, account_id: int, message_ids: list[str]) -> list[Record]:
        if not message_ids:
            return []
        return await self._reader.run(lambda db: record_reads.by_message_ids(db, account_id, message_ids))

    # the audit log

    async def append_audit(self, entry: AuditEntry) -> None:
        await self._writer.transaction(work(audit.append, entry), keep_late=True)  # of a done change

    async def audit_page(self, page: int, per_page: int) -> AuditPage:
        return await self._reader.run(lambda db: audit.page(db, page, per_page))

    async def account_changes(self, cursor: str, wait: float) -> tuple[str, list[str]]:
        """Polled: the audit log's ids are the cursor (every process on the file writes there)."""
        if not cursor:
            return str(await self._reader.run(audit.latest_id)), []
        rows = await self._reader.run(lambda db: audit.changes_after(db, int(cursor)))
        if not rows:
            await asyncio.sleep(min(wait, CHANGES_POLL_SECONDS))
            return cursor, []
        return str(rows[-1][0]), [api_key for _, api_key in rows]

    # the callback outbox (events are written by settle and apply_receipts)

    async def claim_callbacks(self, now_ms: int, lease_ms: int, limit: int, token: str) -> list[OutboxEvent]:
        return await self._writer.transaction(work(outbox.claim, now_ms, lease_ms, limit, token))

    async def finish_callbacks(self, token: str, finishes: Sequence[Finish], now_ms: int) -> None:
        refuse_unknown_outcomes(finishes)
        await self._writer.transaction(work(outbox.finish, token, list(finishes), now_ms), keep_late=True)

    async def callback_backlog(self, now_ms: int) -> tuple[int, float]:
        return await self._reader.run(lambda db: outbox.backlog(db, now_ms))

    async def dead_callbacks(
        self, account_id: int, page: int, per_page: int
    ) -> tuple[list[OutboxEvent], int]:
        return await self._reader.run(lambda db: outbox.dead_page(db, account_id, page, per_page))

    async def prune_callbacks(self, now_ms: int) -> int:
        return await self._writer.transaction(work(outbox.prune, now_ms - ENDED_KEPT_MS, PRUNE_BATCH))

    async def replay_callbacks(self, account_id: int, now_ms: int) -> int:
        return await self._writer.transaction(work(outbox.replay, account_id, now_ms))

    async def find_message(self, message_id: str) -> tuple[Account, Record] | None:
        def owner(db: sqlite3.Connection) -> AccountRow | None:
            account_id = audit.record_owner(db, message_id)
            return (
                None
                if account_id is None
                else db.execute(
                    f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?",  # noqa: S608
                    (account_id,),
                ).fetchone()
            )

        row = await self._reader.run(owner)
        if row is None:
            return None
        account = account_of(row)
        found = await self.find_records(account.id, [message_id])
        return (account, found[0]) if found else None
