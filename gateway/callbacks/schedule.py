"""When a failed callback is tried again: about 10 s, 1 min, 5 min, 30 min, 2 h, 6 h, then every
6 h, each ±20 %, until 24 h after the event was created (minimal; the callbacks helper's version
replaces this one)."""

from __future__ import annotations

import random

__all__ = ["DELAYS", "EVERY", "GIVE_UP_AFTER", "next_delay"]

DELAYS = (10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0)
EVERY = 21600.0
GIVE_UP_AFTER = 24 * 3600.0
JITTER = 0.2


def next_delay(attempts: int, rng: random.Random) -> float | None:
    """Seconds before the next try after ``attempts`` failed ones; None once the schedule's
    nominal total passes 24 h (then the event is dead)."""
    nominal = DELAYS[attempts - 1] if attempts <= len(DELAYS) else EVERY
    elapsed = sum(DELAYS[: min(attempts, len(DELAYS))]) + EVERY * max(0, attempts - len(DELAYS))
    if elapsed > GIVE_UP_AFTER:
        return None
    return nominal * (1 + rng.uniform(-JITTER, JITTER))
