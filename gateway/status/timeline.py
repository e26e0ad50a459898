"""The last 30 minutes of this process, minute by minute, for the charts on ``/status``.

Prometheus keeps the history for whoever scrapes it; the status page should show a trend without
one. So each process keeps a ring of per-minute buckets (requests, server errors, carrier calls and
their total latency) in memory. Recording adds to the current bucket and nothing else — no clock
read, no allocation: ``roll`` moves to a new minute, called by a timer on each minute boundary
(``run``) and by the page before it reads. What a process forgets on restart is only a glance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MINUTES", "Minute", "Timeline"]

MINUTES = 30


class _Bucket:
    """One minute's counts: mutable, reused when the ring comes round again."""

    __slots__ = ("carrier_calls", "carrier_seconds", "errors", "minute", "requests")

    def __init__(self, minute: int) -> None:
        self.reset(minute)

    def reset(self, minute: int) -> None:
        self.minute = minute
        self.requests = self.errors = self.carrier_calls = 0
        self.carrier_seconds = 0.0


@dataclass(frozen=True, slots=True)
class Minute:
    """One minute as the page shows it; ``start`` in seconds since the epoch."""

    start: float
    requests: int
    errors: int
    carrier_calls: int
    carrier_avg_ms: float | None  # None: no carrier call that minute


class Timeline:
    """Per-minute counts over the last ``minutes`` minutes. One event loop feeds it: no locking."""

    def __init__(self, clock: Callable[[], float] = time.time, minutes: int = MINUTES) -> None:
        self._clock = clock
        now = int(clock() // 60)
        # Oldest first; the last one is the current minute.
        self._ring = [_Bucket(now - minutes + 1 + index) for index in range(minutes)]
        self._current = self._ring[-1]

    def request(self, status: int) -> None:
        """One answered request; a 5xx also counts as an error."""
        self._current.requests += 1
        if status >= 500:
            self._current.errors += 1

    def carrier_call(self, seconds: float) -> None:
        self._current.carrier_calls += 1
        self._current.carrier_seconds += seconds

    def roll(self) -> None:
        """Make the current minute (by the clock) the newest bucket, emptying the ones it passed."""
        now = int(self._clock() // 60)
        behind = now - self._current.minute
        if behind <= 0:
            return
        ring = self._ring
        for _ in range(min(behind, len(ring))):
            ring.append(ring.pop(0))  # the oldest bucket becomes the newest
        for index, bucket in enumerate(ring):
            expected = now - len(ring) + 1 + index
            if bucket.minute != expected:
                bucket.reset(expected)
        self._current = ring[-1]

    def minutes(self) -> list[Minute]:
        """The window, oldest first, up to the current (unfinished) minute."""
        self.roll()
        return [
            Minute(
                bucket.minute * 60.0,
                bucket.requests,
                bucket.errors,
                bucket.carrier_calls,
                bucket.carrier_seconds * 1000 / bucket.carrier_calls if bucket.carrier_calls else None,
            )
            for bucket in self._ring
        ]

    async def run(self) -> None:
        """Roll on every minute boundary, for as long as the app runs (a task it cancels)."""
        while True:
            await asyncio.sleep(60 - self._clock() % 60)
            self.roll()
