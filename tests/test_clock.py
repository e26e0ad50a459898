"""``LocalDays`` (the day a send counts for, remembered per minute) agrees with ``local_day``."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.clock import LocalDays, local_day


@pytest.mark.parametrize(
    "zone, midnight",
    [
        ("Asia/Shanghai", "2026-11-30T00:00:00"),
        ("America/Santiago", "2026-09-06T00:00:00"),  # the clocks jump at midnight: 00:00 never happens
        ("America/New_York", "2026-03-08T00:00:00"),
    ],
)
def test_the_remembered_day_changes_exactly_at_local_midnight(zone: str, midnight: str):
    tz = ZoneInfo(zone)
    boundary = datetime.fromisoformat(midnight).replace(tzinfo=tz).timestamp()
    days = LocalDays(tz)
    # Every second from two minutes before the boundary to two minutes after, in order, as sends come.
    for second in range(-120, 121):
        instant = boundary + second + 0.5
        assert days(instant) == local_day(instant, tz), (zone, second)
    assert days(boundary - 1) != days(boundary + 60)
