"""SQLite connections on threads of their own, and group commit for the writer.

A connection lives on one dedicated thread, so the event loop never blocks on SQLite. Writes are
durable (WAL, ``synchronous=FULL``: a commit is on disk before it returns), which makes the fsync of
each commit the price of a send. :class:`GroupWriter` pays it once for many: transactions that arrive
while a commit is running are queued and then run together — each in its own savepoint, so one
failing does not undo the others — under a single COMMIT. A caller is answered only after that
COMMIT, so an acknowledged write is still on disk; at low load a group is one transaction and
nothing waits.

The event loop's side of a write is cheap on purpose: it puts the work on a ``queue.SimpleQueue``
(no thread hop, no executor future) that the writer thread blocks on, and the writer wakes all the
waiters of a committed group with one ``call_soon_threadsafe`` per commit, not one per write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gateway.store.base import StoreUnavailable

__all__ = ["Connection", "GroupWriter"]

T = TypeVar("T")
log = logging.getLogger("smsedge.store")
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
        if len(works) == 1:  # alone, the transaction is its savepoint: two statements fewer
            try:
                outcomes.append((works[0](db), None))
            except Exception as exc:  # undone alone, as a failing work in a group is
                if db.in_transaction:
                    db.execute("ROLLBACK")
                return [(None, exc)]
            db.execute("COMMIT")
            return outcomes
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


#: (work, its future, that future's loop, run in a group commit?, what to call once committed)
_Item = tuple[
    Work, "asyncio.Future[Any]", asyncio.AbstractEventLoop, bool, "Callable[[Any], None] | None"
]
_Outcome = tuple[Any, BaseException | None]
_STOP: Any = object()


class GroupWriter(Connection):
    """The one writing connection: a thread that runs queued transactions in group commits."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(path, timeout, "writer")
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._runner: threading.Thread | None = None
        self._unawaited = 0  # queued by ``transaction_unawaited``, not committed yet

    async def transaction(
        self, work: Callable[[sqlite3.Connection], T], committed: Callable[[T], None] | None = None
    ) -> T:
        """Run ``work`` in a write transaction; return once its commit is on disk.

        ``committed`` (if given) is called on the loop with the result right after the commit, in
        commit order, even when the caller has stopped waiting: the place to tell a cache.
        """
        return await self._submit(work, grouped=True, committed=committed)

    def transaction_unawaited(
        self, work: Callable[[sqlite3.Connection], T], committed: Callable[[T], None], what: str
    ) -> None:
        """Queue ``work`` for the next group commit without waiting for it (a failure is logged).

        For writes whose caller must not wait on a commit but whose effect later reads of this
        process must see: ``caught_up`` waits for them.
        """
        self._unawaited += 1
        self._submit(work, grouped=True, committed=committed).add_done_callback(
            lambda future: self._unawaited_done(future, what)
        )

    def _unawaited_done(self, future: asyncio.Future[Any], what: str) -> None:
        self._unawaited -= 1
        if not future.cancelled() and future.exception() is not None:
            log.error("%s not written: %s", what, future.exception())

    async def caught_up(self) -> None:
        """Return once every write queued so far without waiting is committed (or has failed)."""
        if self._unawaited:
            await self._submit(_nothing, grouped=True)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` alone on the writer's thread, outside any group (it manages its own)."""
        return await self._submit(work, grouped=False)

    def _submit(
        self, work: Work, *, grouped: bool, committed: Callable[[Any], None] | None = None
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._runner is None or not self._runner.is_alive():  # first use, or after a crash
            self._runner = threading.Thread(target=self._serve, name="sqlite-writer", daemon=True)
            self._runner.start()
        self._queue.put((work, future, loop, grouped, committed))
        return future

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._queue.put(None)  # after every queued write: they all finish first
            await asyncio.to_thread(runner.join)
        self._thread.shutdown(wait=True)

    def _serve(self) -> None:
        """The writer thread: take what is queued, run it, wake its waiters; until ``close``."""
        pending: _Item | None = None
        while True:
            item = pending if pending is not None else self._queue.get()
            pending = None
            if item is None:
                break
            if not item[3]:
                _wake([item], [_attempt(self._alone, item[0])])
                continue
            group = [item]
            while True:  # everything that queued up while the last commit ran
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None or not more[3]:
                    pending = more if more is not None else _STOP
                    break
                group.append(more)
            _wake(group, self._commit(group))
            if pending is _STOP:
                break
        if self._db is not None:
            self._db.close()
            self._db = None

    def _alone(self, work: Work) -> Any:
        if self._db is None:
            self._db = self._connect()
        return work(self._db)

    def _commit(self, group: list[_Item]) -> list[_Outcome]:
        try:
            if self._db is None:
                self._db = self._connect()
            return _run_group(self._db, [item[0] for item in group])
        except BaseException as exc:  # BEGIN or COMMIT failed: nothing of the group stands
            return [(None, exc)] * len(group)


def _nothing(db: sqlite3.Connection) -> None:
    """A write that writes nothing: its commit comes after everything queued before it."""


def _attempt(work: Callable[[Work], Any], arg: Work) -> _Outcome:
    try:
        return work(arg), None
    except BaseException as exc:
        return None, exc


def _wake(items: list[_Item], outcomes: list[_Outcome]) -> None:
    """Hand the outcomes to their loops: one thread-safe call per loop (one, nearly always)."""
    loops: dict[asyncio.AbstractEventLoop, list[tuple[_Item, _Outcome]]] = {}
    for item, outcome in zip(items, outcomes, strict=True):
        loops.setdefault(item[2], []).append((item, outcome))
    for loop, answers in loops.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, answers)


def _resolve(answers: list[tuple[_Item, _Outcome]]) -> None:
    """On the loop: set every future of a commit, in commit order."""
    for (_, future, _, _, committed), (result, error) in answers:
        if error is None and committed is not None:
            try:
                committed(result)
            except Exception:  # a bug there must not leave the other waiters hanging
                log.exception("commit hook failed")
        if future.done():  # its caller gave up (cancelled); the write stands all the same
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(_store_error(error))
