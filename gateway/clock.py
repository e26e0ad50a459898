"""Wall-clock time as an injectable dependency, so day boundaries can be tested."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Clock", "LocalDays", "local_day", "period_end", "system_clock"]

#: Seconds since the epoch, like ``time.time``.
Clock = Callable[[], float]
system_clock: Clock = time.time


def local_day(epoch: float, zone: ZoneInfo) -> str:
    """The calendar day (``YYYY-MM-DD``) an instant falls on in the gateway's time zone."""
    return datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d")


def period_end(epoch: float, zone: ZoneInfo, *, monthly: bool) -> float:
    """When the local day (or month) of an instant ends: the next midnight (or first of a month)
    in the gateway's time zone, as seconds since the epoch. A month is a day's first seven
    characters (``YYYY-MM``), so only its end needs working out."""
    today = datetime.fromtimestamp(epoch, zone).date()
    if monthly:
        following = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    else:
        following = today + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=zone).timestamp()


class LocalDays:
    """``local_day`` for one zone, remembering the last minute's answer.

    Every send asks; a time-zone conversion and ``strftime`` each time cost more than the rest of
    settling. Days change on a whole minute in every zone in use today (only the local mean times
    of before ~1900 had seconds in their offsets), so the minute is the key.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._minute = -1
        self._day = ""

    def __call__(self, epoch: float) -> str:
        minute = int(epoch // 60)
        if minute != self._minute:
            self._day = local_day(epoch, self._zone)
            self._minute = minute
        return self._day
