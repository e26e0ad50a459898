"""Wall-clock time as an injectable dependency, so day boundaries can be tested."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["Clock", "local_day", "system_clock"]

#: Seconds since the epoch, like ``time.time``.
Clock = Callable[[], float]
system_clock: Clock = time.time


def local_day(epoch: float, zone: ZoneInfo) -> str:
    """The calendar day (``YYYY-MM-DD``) an instant falls on in the gateway's time zone."""
    return datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d")
