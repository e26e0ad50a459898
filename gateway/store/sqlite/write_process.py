"""The SQLite writer's own process: every write transaction runs here, in group commits.

A process, not a thread: a writer thread hands the GIL back around every statement, and that halved
the gateway's throughput. The loop sends works down a pipe; works that queued while a commit ran share
one COMMIT. A work not committed by its deadline is not run, so a 503 means it did not happen.
SIGINT and SIGTERM are ignored: the process ends when its input does, after what it read.
Wire format and deadlines: (docs/stores.md, "Why the writer is a process"; "Deadlines").
``python -m gateway.store.sqlite.write_process PATH TIMEOUT``.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sqlite3
import struct
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

__all__ = [
    "MAX_GROUP",
    "DatabaseWork",
    "FrameReader",
    "Item",
    "Work",
    "connect",
    "frame",
    "main",
    "write_all",
]

_LENGTH = struct.Struct(">I")
MAX_GROUP = 1000  # works read into one round of commits at most
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class DatabaseWork(Protocol[T_co]):
    """What the writer runs: a function of the connection, or a ``Work`` (a Protocol, not a
    ``Callable``: mypy does not take a NamedTuple's ``__call__`` for a Callable)."""

    def __call__(self, db: sqlite3.Connection, /) -> T_co: ...


class Work(NamedTuple, Generic[T]):
    """``function(connection, *args)``, as it crosses the pipe (``writes.work`` makes one)."""

    function: Callable[..., T]
    args: tuple[Any, ...]

    def __call__(self, db: sqlite3.Connection) -> T:
        return self.function(db, *self.args)


#: What goes down the pipe for one work: its number, function, arguments, whether it groups, and
#: the ``time.monotonic()`` after which it must not be committed (None: never too late).
Item = tuple[int, Callable[..., Any], tuple[Any, ...], bool, "float | None"]
Outcome = tuple[Any, "Exception | None"]


def _late() -> Outcome:
    """The answer of a work not run because its caller stopped waiting (nobody reads it)."""
    return None, sqlite3.OperationalError("not run: its caller stopped waiting (store.timeout)")


def _past(deadline: float | None, now: float) -> bool:
    return deadline is not None and now > deadline


def frame(payload: object) -> bytes:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


class FrameReader:
    """Frames out of a byte stream that arrives in pieces of any size."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Any]:
        self._buffer += data
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[_LENGTH.size : end])
            del self._buffer[:end]
            yield pickle.loads(payload)  # noqa: S301 — our own parent, over our own pipe


def connect(path: str, timeout: float) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a 200 means the record survived a power cut
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _error(exc: Exception) -> Exception:
    """The exception itself if it can cross the pipe, else a RuntimeError that names it."""
    try:
        pickle.dumps(exc)
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _alone(db: sqlite3.Connection, work: DatabaseWork[Any]) -> Outcome:
    try:
        return work(db), None
    except Exception as exc:
        return None, _error(exc)


def run_group(
    db: sqlite3.Connection, works: Sequence[DatabaseWork[Any]], deadlines: list[float | None]
) -> list[Outcome]:
    """All ``works`` in one write transaction and one COMMIT; a work that fails is undone alone.

    Works seldom fail, so the group first runs without a savepoint per work (two statements
    fewer each); only if one fails is the group rolled back and run again with them. A work past
    its deadline is left out; if one passes it while the group runs, the group is rolled back
    and run again without it.
    """
    outcomes = [_late()] * len(works)
    live, savepoints = list(range(len(works))), False
    while True:
        now = time.monotonic()
        live = [index for index in live if not _past(deadlines[index], now)]
        if not live:
            return outcomes
        due = [deadline for index in live if (deadline := deadlines[index]) is not None]
        ran = _in_transaction(
            db, [works[index] for index in live], savepoints=savepoints, deadline=min(due) if due else None
        )
        if ran is None:  # a deadline passed before the COMMIT: again, without the late works
            continue
        if len(live) > 1 and not savepoints and any(error is not None for _, error in ran):
            savepoints = True
            continue
        for index, outcome in zip(live, ran, strict=True):
            outcomes[index] = outcome
        return outcomes


def _in_transaction(
    db: sqlite3.Connection, works: list[DatabaseWork[Any]], *, savepoints: bool, deadline: float | None
) -> list[Outcome] | None:
    """The works' outcomes, all committed but the failed ones; None if rolled back for ``deadline``."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        return [(None, _error(exc))] * len(works)
    outcomes: list[Outcome] = []
    try:
        for work in works:
            if savepoints:
                db.execute("SAVEPOINT work")
            outcome = _alone(db, work)
            outcomes.append(outcome)
            if outcome[1] is not None and not savepoints:  # undo all; the caller runs them again
                db.execute("ROLLBACK")
                return outcomes
            if savepoints:
                if outcome[1] is not None:  # this work's own failure: undo it alone
                    db.execute("ROLLBACK TO work")
                db.execute("RELEASE work")
        if _past(deadline, time.monotonic()):
            db.execute("ROLLBACK")
            return None
        db.execute("COMMIT")
    except sqlite3.Error as exc:  # COMMIT (or a savepoint) failed: nothing of the group stands
        if db.in_transaction:
            db.execute("ROLLBACK")
        return [(None, _error(exc))] * len(works)
    return outcomes


class _Writer:
    def __init__(self, path: str, timeout: float) -> None:
        self._path, self._timeout = path, timeout
        self._db: sqlite3.Connection | None = None

    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self._path, self._timeout)
        return self._db

    def run(self, items: list[Item]) -> None:
        """Run what was read, in order: runs of grouped works as one commit each; reply per commit."""
        start = 0
        while start < len(items):
            end = start + 1
            if items[start][3]:
                while end < len(items) and items[end][3]:
                    end += 1
            batch = items[start:end]
            answers = [
                (item[0], *outcome) for item, outcome in zip(batch, self._outcomes(batch), strict=True)
            ]
            write_all(1, frame(answers))
            start = end

    def _outcomes(self, batch: list[Item]) -> list[Outcome]:
        """One group's outcomes, or a lone work's."""
        try:
            db = self.db()
        except sqlite3.Error as exc:
            return [(None, _error(exc))] * len(batch)
        works = [Work(function, args) for _, function, args, _, _ in batch]
        if batch[0][3]:
            return run_group(db, works, [item[4] for item in batch])
        return [_late() if _past(batch[0][4], time.monotonic()) else _alone(db, works[0])]


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` into a blocking ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    writer, reader = _Writer(argv[0], float(argv[1])), FrameReader()
    while True:
        data = os.read(0, 1 << 20)
        if not data:
            return 0
        items = [item for batch in reader.feed(data) for item in batch]
        # What else queued up goes into the same commit, up to a bound so a steady stream of
        # writes cannot keep the first ones waiting.
        while len(items) < MAX_GROUP and select.select([0], [], [], 0)[0]:
            more = os.read(0, 1 << 20)
            if not more:
                writer.run(items)
                return 0
            items += [item for batch in reader.feed(more) for item in batch]
        writer.run(items)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # the gateway is gone: nobody is left to answer
        sys.exit(0)
