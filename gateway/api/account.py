"""GET /api/account/info."""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.api.models import AccountData, AccountResponse
from gateway.clock import local_day
from gateway.errors import store_unavailable
from gateway.keys import ACCOUNT, CLOCK, CONFIG, STORE
from gateway.responses import json_response
from gateway.store.base import StoreUnavailable

__all__ = ["account_info"]


@functools.lru_cache(maxsize=8)
def _day(second: int, zone: ZoneInfo) -> str:
    # A day starts on a whole second in every time zone, so the second names it: one conversion
    # per second instead of one per request.
    return local_day(second, zone)


def balance_yuan(balance_milli: int) -> float:
    """Yuan with 2 decimals, rounded down: never show money that is not there."""
    return (balance_milli // 10) / 100


async def account_info(request: web.Request) -> web.Response:
    account = request[ACCOUNT]
    today = _day(int(request.app[CLOCK]()), request.app[CONFIG].server.zone)
    try:
        today_sent = await request.app[STORE].today_sent(account.id, today)
    except StoreUnavailable:
        raise store_unavailable() from None
    return json_response(AccountResponse(
        success=True,
        data=AccountData(
            balance=balance_yuan(account.balance_milli),
            total_sent=account.total_sent,
            today_sent=today_sent,
            verification_status=account.verification_status,
        ),
    ))
