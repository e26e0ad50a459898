"""Callback POSTs in a process of their own (``poster_process``), so the event loop that serves the
sends only frames each request and reads its answer: an HTTP client's exchange costs that loop
several times more (aiohttp's POST about 80 µs with uvloop, measured in issue 25). Claims, order,
leases, the hosts' gates and the ends stay with the deliverer, and the store keeps its one writer.

The process starts with the first POST and again after it ends; a POST it leaves unanswered (it
ended, or said nothing for its timeout and a grace) comes back as not reached, to be tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from types import TracebackType

from gateway.store.sqlite.write_process import FrameReader, frame

__all__ = ["Poster"]

#: How long past the POST's own timeout the process may take to answer before it counts as lost.
GRACE_SECONDS = 2.0

Answer = tuple["int | None", "str | None"]


class Poster:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._process: asyncio.subprocess.Process | None = None
        self._reading: asyncio.Task[None] | None = None
        self._waiters: dict[int, asyncio.Future[Answer]] = {}
        self._seq = 0
        self._starting = asyncio.Lock()  # one process, however many POSTs ask at once

    async def __aenter__(self) -> Poster:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """The receiver's status, or None and what went wrong."""
        process = await self._running()
        assert process.stdin is not None
        self._seq += 1
        request_id = self._seq
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = future
        try:
            process.stdin.write(frame((request_id, url, body, headers)))
            async with asyncio.timeout(self._timeout + GRACE_SECONDS):
                return await future
        except TimeoutError:
            return None, f"no answer within {self._timeout:g} s"
        finally:
            self._waiters.pop(request_id, None)

    async def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()  # its end of input: it stops
        try:
            async with asyncio.timeout(2.0):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._reading is not None:
            await asyncio.gather(self._reading, return_exceptions=True)

    async def _running(self) -> asyncio.subprocess.Process:
        async with self._starting:
            if self._process is None or self._process.returncode is not None:
                self._process = await self._spawn()
            return self._process

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.callbacks.poster_process",
            str(self._timeout),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal is the gateway's to handle
        )
        self._reading = asyncio.create_task(self._read(process))
        return process

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        frames = FrameReader()
        while data := await process.stdout.read(1 << 16):
            for request_id, status, error in frames.feed(data):
                future = self._waiters.get(request_id)
                if future is not None and not future.done():
                    future.set_result((status, error))
        if self._process is process:  # the next POST starts another
            self._process = None
        for future in self._waiters.values():  # it ended: what it held is not reached
            if not future.done():
                future.set_result((None, "not reached: the callbacks' process ended"))
        with contextlib.suppress(ProcessLookupError):
            await process.wait()
