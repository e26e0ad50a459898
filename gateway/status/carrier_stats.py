"""A small rolling window of recent carrier calls, for the status page.

Prometheus histograms answer "how was the carrier over the last hour" for whoever scrapes them; an
operator opening ``/status`` wants "how are the last few calls going" without a dashboard. So each
carrier keeps its last ``size`` upstream calls (outcome and latency) in memory, in this process only:
it is a glance, not a record, and it forgets everything on restart.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["DEFAULT_WINDOW", "CarrierStats", "CarrierSummary"]

DEFAULT_WINDOW = 100  # calls kept per carrier


class _Call(NamedTuple):
    ok: bool
    seconds: float
    at: float  # clock() when the call ended


@dataclass(frozen=True, slots=True)
class CarrierSummary:
    """Aggregates over the window; ``None`` where no call has been seen yet."""

    calls: int
    success_rate: float | None  # 0..1: calls where the carrier took at least one number
    avg_ms: float | None
    p95_ms: float | None
    last_seconds_ago: float | None


class CarrierStats:
    """The last ``size`` calls of each carrier. One event loop feeds it: no locking needed."""

    def __init__(
        self, carriers: Iterable[str], size: int = DEFAULT_WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self._clock = clock
        self._calls: dict[str, deque[_Call]] = {name: deque(maxlen=size) for name in carriers}

    def record(self, carrier: str, outcome: str, seconds: float) -> None:
        """One upstream call ended; ``outcome`` is the metrics label ("success", "refused", a kind)."""
        window = self._calls.get(carrier)
        if window is None:  # a carrier it was not told about (a reload added it): counted all the same
            window = self._calls[carrier] = deque(maxlen=self.size)
        window.append(_Call(outcome == "success", seconds, self._clock()))

    def summary(self, carrier: str) -> CarrierSummary:
        calls = list(self._calls.get(carrier, ()))
        if not calls:
            return CarrierSummary(0, None, None, None, None)
        latencies = sorted(call.seconds * 1000 for call in calls)
        # Nearest-rank percentile: with few calls it is the slowest one, which is what to look at.
        p95 = latencies[min(len(latencies) - 1, max(0, -(-95 * len(latencies) // 100) - 1))]
        return CarrierSummary(
            calls=len(calls),
            success_rate=sum(call.ok for call in calls) / len(calls),
            avg_ms=sum(latencies) / len(latencies),
            p95_ms=p95,
            last_seconds_ago=max(0.0, self._clock() - calls[-1].at),
        )

    def carriers(self) -> list[str]:
        return list(self._calls)
