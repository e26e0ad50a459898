"""Quotas per account: what a reserve counts against ``daily_limit`` and ``monthly_limit``.

Both stores hold the check and the count in the reserve's own transaction (SQLite) or script
(Redis), so sends racing on any number of gateways can never pass a limit together. A reserve
counts its messages in the day and month of ``server.timezone`` the sender names; a settle gives
back the carrier's refusals to that same day and month. The rules: (docs/quotas.md).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PERIODS", "Period", "QuotaExceeded", "counted_in"]

#: Which limit refused a reserve: the monthly one is told first (it lasts longer).
PERIODS = ("daily", "monthly")


class Period(NamedTuple):
    """The local day (``YYYY-MM-DD``) and month (``YYYY-MM``) a reserve counts in (a tuple: it
    crosses to SQLite's writer process as one)."""

    day: str
    month: str


def counted_in(day: str) -> Period:
    """The period of a local day: its month is its first seven characters."""
    return Period(day, day[:7])


class QuotaExceeded(Exception):
    """A reserve refused (nothing written, nothing charged): the account's ``period`` limit
    (``daily`` or ``monthly``) would be passed."""

    def __init__(self, period: str) -> None:
        super().__init__(f"{period} limit reached")
        self.period = period
