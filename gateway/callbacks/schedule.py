"""When a callback that failed is tried again: backoff with jitter, so receivers that went down
together are not all retried in the same second, for at most a day (docs/callbacks.md, "Retries").
After ``DEAD_AFTER_SECONDS`` from the event's creation it is ``dead``: kept for the account to see
and replay, no longer sent. The last try is at that deadline, so a receiver back by then gets it."""

from __future__ import annotations

import random

__all__ = ["DEAD_AFTER_SECONDS", "next_attempt_ms", "next_delay"]

DEAD_AFTER_SECONDS = 24 * 3600
# After the 1st, 2nd, … failed POST; the last one repeats: 10 s, 1 min, 5 min, 30 min, 2 h, 6 h.
_DELAYS_SECONDS = (10, 60, 300, 1800, 7200, 21600)
_JITTER = 0.2


def next_delay(attempts: int, rng: random.Random) -> float:
    """Seconds to wait after the ``attempts``-th failed POST (1 for the first), ±20 %."""
    if attempts < 1:
        raise ValueError(f"a delay follows a failed attempt, not attempt {attempts}")
    nominal = _DELAYS_SECONDS[min(attempts, len(_DELAYS_SECONDS)) - 1]
    return nominal * rng.uniform(1 - _JITTER, 1 + _JITTER)


def next_attempt_ms(created_ms: int, attempts: int, now_ms: int, rng: random.Random) -> int | None:
    """When to POST an event again that failed for the ``attempts``-th time at ``now_ms``; never
    after the deadline (a retry due later is moved to it), and ``None`` at or past it: dead."""
    deadline_ms = created_ms + DEAD_AFTER_SECONDS * 1000
    if now_ms >= deadline_ms:
        return None
    return min(now_ms + round(next_delay(attempts, rng) * 1000), deadline_ms)
