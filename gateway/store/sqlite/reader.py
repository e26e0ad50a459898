"""SQLite's reader off the event loop: one connection on a thread of its own.

Apart from the writer (``sqlite/writer``), which lives in a process of its own: WAL lets this
thread read while the writer writes. What a database error becomes for a caller (``store_error``)
is here too, and the writer answers its callers by it as well.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from gateway.store.base import StoreUnavailable
from gateway.store.sqlite.write_process import connect

__all__ = ["Connection", "store_error"]

T = TypeVar("T")


def store_error(exc: BaseException) -> BaseException:
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

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` alone on the connection's thread (it manages any transaction itself)."""

        def call() -> T:
            if self._db is None:
                self._db = connect(self._path, self._timeout)
            return work(self._db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call)
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise store_error(exc) from exc

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._thread, shut)
        self._thread.shutdown(wait=True)
