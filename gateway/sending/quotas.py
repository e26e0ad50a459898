"""A send the account's quota refuses: 429 ``QUOTA_EXCEEDED`` with ``Retry-After`` until the limit's
period ends in the gateway's time zone, counted in ``smsedge_quota_refusals_total``. The store
refused it before anything was written or charged (``gateway.store.quotas``); the rules:
(docs/quotas.md)."""

from __future__ import annotations

import math

from gateway.billing.charging import Billing
from gateway.clock import period_end
from gateway.errors import ApiError, quota_exceeded

__all__ = ["over_quota"]


def over_quota(period: str, now: float, billing: Billing) -> ApiError:
    """The answer to a send refused at ``now`` for the ``period`` (daily, monthly) limit."""
    billing.metrics.quota_refused(period)
    ends = period_end(now, billing.zone, monthly=period == "monthly")
    return quota_exceeded(period, max(1, math.ceil(ends - now)))
