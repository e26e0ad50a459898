"""SQLite's writer off the event loop, in a process of its own (the reader: ``sqlite/reader``).

Writes are durable (WAL, ``synchronous=FULL``), which makes a commit's fsync the price of a send:
:class:`GroupWriter` pays it once for many, and a caller is answered only after the COMMIT. The loop's
side is cheap on purpose (one frame down per loop turn, one up per commit, no thread). No caller
waits longer than ``store.timeout``: a stalled writer costs 503s, never a hang.
Details: (docs/stores.md, "SQLite").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.store.base import StoreUnavailable
from gateway.store.sqlite.reader import store_error
from gateway.store.sqlite.waits import COMMIT_GRACE, Waits
from gateway.store.sqlite.write_process import DatabaseWork, FrameReader, Item, Work, frame, write_all

__all__ = ["GroupWriter"]

T = TypeVar("T")
log = logging.getLogger("smsedge.store")


#: A write waiting for its commit: its future, and what to call once committed.
_Waiter = tuple["asyncio.Future[Any]", "Callable[[Any], None] | None"]


class GroupWriter:
    """The one writing connection, in its own process; usable from the loop that first writes."""

    def __init__(self, path: str, timeout: float) -> None:
        self._path, self._timeout = path, timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._outbox: list[Item] = []
        self._unsent = bytearray()  # framed, not yet taken by the pipe
        self._waiters: dict[int, _Waiter] = {}
        self._frames = FrameReader()
        self._seq = 0
        self._exited: asyncio.Future[None] | None = None
        self._waits = Waits(timeout + COMMIT_GRACE, self._give_up)

    async def transaction(
        self, work: DatabaseWork[T], committed: Callable[[T], None] | None = None, *, keep_late: bool = False
    ) -> T:
        """Run ``work`` in a write transaction; return once its commit is on disk.

        ``work`` must be picklable: a module-level function, or ``writes.work(function, *args)``.
        ``committed`` (if given) is called on the loop with the result right after the commit, in
        commit order, even when the caller has stopped waiting: the place to tell a cache.
        Not committed within the timeout: StoreUnavailable, and the work is dropped, unless
        ``keep_late`` (it then commits whenever the writer gets to it).
        """
        return await self._submit(work, grouped=True, committed=committed, keep_late=keep_late)

    async def run(self, work: DatabaseWork[T], *, bounded: bool = True) -> T:
        """Run ``work`` alone in the writer, outside any group (it manages its own transaction).

        Within the timeout, or it is dropped; not ``bounded``: however long it takes (migrations).
        """
        return await self._submit(work, grouped=False, bounded=bounded)

    def _submit(
        self,
        work: DatabaseWork[T],
        *,
        grouped: bool,
        committed: Callable[[T], None] | None = None,
        bounded: bool = True,
        keep_late: bool = False,
    ) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("the SQLite writer is bound to the event loop that first used it")
        future = loop.create_future()
        self._seq += 1
        self._waiters[self._seq] = (future, committed)
        deadline = None
        if bounded:
            self._waits.start(loop, self._seq)
            if not keep_late:
                deadline = time.monotonic() + self._timeout
        if not self._outbox and self._starting is None:
            loop.call_soon(self._send)  # once per loop turn, for all that turn's writes
        function, args = work if isinstance(work, Work) else (work, ())
        self._outbox.append((self._seq, function, args, grouped, deadline))
        if self._process is None and self._starting is None:  # first use, or after a crash
            self._starting = loop.create_task(self._start())
        return future

    async def _start(self) -> None:
        try:
            process = await asyncio.to_thread(self._spawn)
        except OSError as exc:
            self._starting = None
            self._fail_all(f"the SQLite writer did not start: {exc}")
            return
        assert self._loop is not None
        self._process, self._starting = process, None
        self._exited = self._loop.create_future()
        assert process.stdin is not None and process.stdout is not None
        os.set_blocking(process.stdin.fileno(), False)
        self._loop.add_reader(process.stdout.fileno(), self._receive, process)
        self._send()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # The works are pickled by reference: the child must import what this process imports.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        return subprocess.Popen(  # noqa: S603 — our own interpreter and module, no shell
            [sys.executable, "-m", "gateway.store.sqlite.write_process", self._path, str(self._timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )

    def _send(self) -> None:
        """Frame what this loop turn queued and hand the pipe as much as it takes."""
        if self._process is None:
            return  # still starting: ``_start`` sends it all
        if self._outbox:
            self._unsent += self._framed(self._outbox)
            self._outbox = []
        stdin = self._process.stdin
        assert stdin is not None and self._loop is not None
        try:
            written = os.write(stdin.fileno(), self._unsent) if self._unsent else 0
        except BlockingIOError:
            written = 0
        except OSError as exc:  # the writer is gone: ``_receive`` sees its end and fails the waiters
            log.error("SQLite writer pipe broken: %s", exc)
            return
        del self._unsent[:written]
        if self._unsent:
            self._loop.add_writer(stdin.fileno(), self._drain)

    def _framed(self, items: list[Item]) -> bytes:
        """``items`` as one frame; a work that cannot be pickled fails alone (a bug of its caller)."""
        try:
            return frame(items)
        except Exception:  # rare: find which, answer them, send the others
            sendable = []
            for item in items:
                try:
                    frame(item)
                except Exception as exc:
                    future, _ = self._waiters.pop(item[0])
                    if not future.done():
                        future.set_exception(TypeError(f"a write must be picklable: {exc}"))
                else:
                    sendable.append(item)
            return frame(sendable) if sendable else b""

    def _drain(self) -> None:
        assert self._process is not None and self._process.stdin is not None and self._loop is not None
        self._loop.remove_writer(self._process.stdin.fileno())
        self._send()

    def _receive(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None and self._loop is not None
        data = os.read(process.stdout.fileno(), 1 << 20)
        if not data:
            self._loop.remove_reader(process.stdout.fileno())
            self._gone(process)
            return
        for results in self._frames.feed(data):
            _resolve(self._waiters, results)
        self._waits.forget_answered(self._waiters)

    def _gone(self, process: subprocess.Popen[bytes]) -> None:
        """The writer process ended: whatever it did not answer failed; the next write starts anew."""
        if self._loop is not None and process.stdin is not None and not process.stdin.closed:
            self._loop.remove_writer(process.stdin.fileno())
        process.wait()  # at once: the writer never closes its stdout but by exiting
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()
        self._process, self._frames, self._unsent = None, FrameReader(), bytearray()
        if self._waiters or process.returncode:
            log.error(
                "SQLite writer process exited (%s) with %d writes unanswered: they fail, the"
                " next write starts a new one",
                process.returncode,
                len(self._waiters),
            )
        self._fail_all(f"the SQLite writer exited ({process.returncode})")
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(None)

    def _give_up(self, seq: int) -> None:
        """The caller of write ``seq`` stops waiting; if the write commits all the same, its
        ``committed`` hook still runs."""
        waiter = self._waiters.get(seq)
        if waiter is not None and not waiter[0].done():
            waiter[0].set_exception(
                StoreUnavailable(f"the SQLite writer did not answer within {self._timeout:g} s")
            )

    def _fail_all(self, reason: str) -> None:
        """Every write not answered yet fails, each with an error of its own."""
        waiters, self._waiters, self._outbox = self._waiters, {}, []
        for future, _ in waiters.values():
            if not future.done():
                future.set_exception(StoreUnavailable(reason))

    async def close(self) -> None:
        """Let the writer finish everything queued, then end it."""
        if self._starting is not None:
            await self._starting
        process = self._process
        if process is None:
            return
        self._send()
        assert process.stdin is not None and self._exited is not None and self._loop is not None
        self._loop.remove_writer(process.stdin.fileno())
        if self._unsent:  # what the pipe has not taken yet: handed over by a thread that may wait
            rest, self._unsent = bytes(self._unsent), bytearray()
            os.set_blocking(process.stdin.fileno(), True)
            with contextlib.suppress(OSError):  # gone already: ``_receive`` fails its waiters
                await asyncio.to_thread(write_all, process.stdin.fileno(), rest)
        process.stdin.close()  # the writer finishes what it read, answers it, and exits
        await self._exited


def _resolve(waiters: dict[int, _Waiter], results: list[tuple[int, Any, Exception | None]]) -> None:
    """On the loop: settle the futures of one commit, in commit order."""
    for seq, result, error in results:
        waiter = waiters.pop(seq, None)
        if waiter is None:
            continue
        future, committed = waiter
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
            future.set_exception(store_error(error))
