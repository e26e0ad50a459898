"""A circuit breaker per carrier: stop calling a carrier that keeps failing, try again later.

Closed: calls go through; ``failures`` consecutive failed calls open it. Open: the carrier is skipped
(the request fails over, or fails fast) for ``cooldown`` seconds. Half-open: one trial call goes
through; its success closes the circuit, its failure opens it again. Only the carrier's own trouble
counts (5xx, network, timeouts, throttling of our account) — a caller's bad number does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Gauge

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    def __init__(
        self, failures: int, cooldown: float, gauge: Gauge, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = failures
        self._cooldown = cooldown
        self._gauge = gauge
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    @property
    def takes_calls(self) -> bool:
        """Would a call go through now (closed, or cooled down with no trial running)? Asks only:
        routing uses it to leave a failing carrier out, and to let the trial call reach it."""
        if self._opened_at is None:
            return True
        return self._clock() - self._opened_at >= self._cooldown and not self._trial_running

    def allow(self) -> bool:
        """May a call go to the carrier now? In half-open state only one trial at a time."""
        if self._opened_at is None:
            return True
        if self._clock() - self._opened_at < self._cooldown or self._trial_running:
            return False
        self._trial_running = True
        return True

    def succeeded(self) -> None:
        self._failures = 0
        self._trial_running = False
        if self._opened_at is not None:
            self._opened_at = None
            self._gauge.set(0)

    def failed(self) -> None:
        self._failures += 1
        was_trial, self._trial_running = self._trial_running, False
        if was_trial or self._failures >= self._threshold:
            self._opened_at = self._clock()
            self._gauge.set(1)
