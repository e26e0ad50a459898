"""SQLite connections on threads of their own, and group commit for the writer.

A connection lives on one dedicated thread, so the event loop never blocks on SQLite. Writes are
durable (WAL, ``synchronous=FULL``: a commit is on disk before it returns), which makes the fsync of
each commit the price of a send. :class:`GroupWriter` pays it once for many: transactions that arrive
while a commit is running are queued and then run together — each in its own savepoint, so one
failing does not undo the others — under a single COMMIT. A caller is answered only after that
COMMIT, so an acknowledged write is still on disk; at low load a group is one transaction and
nothing waits.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gateway.store.base import StoreUnavailable

__all__ = ["Connection", "GroupWriter"]

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]


def _store_error(exc: BaseException) -> BaseException:
    """What a caller sees: constraint violations as they are, any other database trouble as 503."""
    if isinstance(exc, sqlite3.IntegrityError):
        return exc
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        error = StoreUnavailable(str(exc))
        error.__cause__ = exc
        return error
    return exc


class Connection:
    """One sqlite3 connection and the single thread allowed to use it."""

    def __init__(self, path: str, timeout: float, name: str) -> None:
        self._path = path
        self._timeout = timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{name}")
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a 200 means the record survived a power cut
        db.execute("PRAGMA foreign_keys=ON")
        return db

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` alone on the connection's thread (it manages any transaction itself)."""

        def call() -> T:
            if self._db is None:
                self._db = self._connect()
            return work(self._db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call)
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise _store_error(exc) from exc

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._thread, shut)
        self._thread.shutdown(wait=True)


def _run_group(db: sqlite3.Connection, works: list[Work]) -> list[tuple[Any, BaseException | None]]:
    """All ``works`` in one write transaction, each in a savepoint; one COMMIT for all."""
    db.execute("BEGIN IMMEDIATE")
    outcomes: list[tuple[Any, BaseException | None]] = []
    try:
        for work in works:
            db.execute("SAVEPOINT work")
            try:
                outcomes.append((work(db), None))
            except Exception as exc:  # this work's own failure: undo it alone
                db.execute("ROLLBACK TO work")
                outcomes.append((None, exc))
            db.execute("RELEASE work")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return outcomes


class GroupWriter(Connection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(path, timeout, "writer")
        self._queued: list[tuple[Work, asyncio.Future[Any]]] = []
        self._flushing = False

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a write transaction; return once its commit is on disk."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((work, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._queued:
                group, self._queued = self._queued, []
                try:
                    works = [work for work, _ in group]
                    outcomes = await self.run(functools.partial(_run_group, works=works))
                except BaseException as exc:  # BEGIN or COMMIT failed: nothing of the group stands
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), (result, error) in zip(group, outcomes, strict=True):
                    if future.done():
                        continue
                    if error is None:
                        future.set_result(result)
                    else:
                        future.set_exception(_store_error(error))
        finally:
            self._flushing = False
