"""GET /api/account/info."""

from __future__ import annotations

import functools
from typing import cast

from aiohttp import web

from gateway.api.models import AccountData, AccountResponse, Verification
from gateway.clock import LocalDays
from gateway.errors import store_unavailable
from gateway.keys import ACCOUNT, CLOCK, CONFIG, STORE
from gateway.responses import json_response
from gateway.store.base import StoreUnavailable
from gateway.store.cache import CachedStore

__all__ = ["account_info"]


#: Which day "today" is in a zone, remembered per minute: one per configured zone (a few in tests).
_days_in = functools.lru_cache(maxsize=8)(LocalDays)


def balance_yuan(balance_milli: int) -> float:
    """Yuan with 2 decimals, rounded down: never show money that is not there."""
    return (balance_milli // 10) / 100


async def account_info(request: web.Request) -> web.Response:
    account = request[ACCOUNT]
    store = request.app[STORE]
    today = _days_in(request.app[CONFIG].server.zone)(request.app[CLOCK]())
    try:
        if isinstance(store, CachedStore):
            account = await store.current(account)
        today_sent = await store.today_sent(account.id, today)
        monthly_sent = await store.month_sent(account.id, today[:7])  # the quota's (``store.quotas``)
    except StoreUnavailable:
        raise store_unavailable() from None
    return json_response(
        AccountResponse(
            success=True,
            data=AccountData(
                balance=balance_yuan(account.balance_milli),
                total_sent=account.total_sent,
                today_sent=today_sent,
                # the store's str, one of VERIFICATION_STATUSES (checked when it was set)
                verification_status=cast(Verification, account.verification_status),
                daily_limit=account.daily_limit,
                monthly_sent=monthly_sent,
                monthly_limit=account.monthly_limit,
            ),
        )
    )
