"""Logging something that a caller can make happen at will, at most once per interval.

A refused callback token is worth a WARNING, but a stream of them must not become a stream of log
lines (disk, log shipping, and the operator's attention are all finite). The count of what was left
out goes in the next line that is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["LogThrottle"]


class LogThrottle:
    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._next = float("-inf")
        self._suppressed = 0

    def due(self) -> int | None:
        """The number of events left out since the last line when one may be written now, else None."""
        now = self._clock()
        if now < self._next:
            self._suppressed += 1
            return None
        suppressed, self._suppressed = self._suppressed, 0
        self._next = now + self._interval
        return suppressed
