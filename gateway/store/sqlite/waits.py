"""How long a caller waits on the SQLite writer: its timeout and ``COMMIT_GRACE``, then a 503.

Every write has the same timeout, so the ends of their waits come in the order they were
submitted: one timer over a queue of them ends them all (a timer per write cost ten times as
much, 4 µs against 0.4 µs a write).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Container

__all__ = ["COMMIT_GRACE", "Waits"]

#: Seconds past a work's deadline its caller still waits: a COMMIT begun in time may finish.
COMMIT_GRACE = 0.2


class Waits:
    """The ends of callers' waits, in order; ``give_up(seq)`` is called on the loop at each."""

    def __init__(self, seconds: float, give_up: Callable[[int], None]) -> None:
        self._seconds = seconds
        self._give_up = give_up
        self._ends: deque[tuple[float, int]] = deque()  # (loop time, seq)
        self._timer: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop, seq: int) -> None:
        self._ends.append((loop.time() + self._seconds, seq))
        if self._timer is None:
            self._timer = loop.call_at(self._ends[0][0], self._sweep, loop)

    def forget_answered(self, waiting: Container[int]) -> None:
        """Drop the answered writes at the front of the queue (most are answered in order)."""
        while self._ends and self._ends[0][1] not in waiting:
            self._ends.popleft()

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, now = None, loop.time()
        while self._ends and self._ends[0][0] <= now:
            self._give_up(self._ends.popleft()[1])
        if self._ends:
            self._timer = loop.call_at(self._ends[0][0], self._sweep, loop)
