"""The account's token bucket in front of the routes that declare a cost.

A route says what it costs next to its handler (``@costs(one_token)``); a route without a cost is
not limited (reads: they spend neither money nor carrier capacity). The cost is known before the
body is checked, so a refused body costs what it claimed. A refused request writes no record and
charges nothing, because it never reaches the handler. Every limited response carries
``RateLimit-Limit/-Remaining/-Reset``; a 429 ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from gateway.errors import ApiError
from gateway.keys import LIMITER, METRICS, RATE_LIMIT_HEADERS, RUNTIME
from gateway.ratelimit import BucketDecision
from gateway.store.base import Account

__all__ = ["Cost", "costs", "one_token", "take_tokens"]

Cost = Callable[[web.Request], Awaitable[int]]
H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])


async def one_token(request: web.Request) -> int:
    return 1


def costs(cost: Cost) -> Callable[[H], H]:
    """Declare what a request to this handler takes from the account's bucket."""

    def declare(handler: H) -> H:
        handler.rate_limit_cost = cost  # type: ignore[attr-defined]
        return handler

    return declare


def _headers(decision: BucketDecision) -> dict[str, str]:
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after)
    return headers


async def take_tokens(request: web.Request, account: Account, cost: int) -> None:
    """Take ``cost`` from the account's own bucket, else ``ratelimit.account`` of the current
    (reloadable) config; 429 when it has not enough."""
    app = request.app
    if account.rate:
        rate, burst = account.rate, account.burst
    else:
        default = app[RUNTIME].current.config.ratelimit.account
        rate, burst = default.rate, default.burst
    decision = await app[LIMITER].take(account.id, rate, burst, cost)
    if decision is not None:
        request[RATE_LIMIT_HEADERS] = _headers(decision)
        if not decision.allowed:
            app[METRICS].reject("account")
            raise ApiError(429, "RATE_LIMITED", "请求频率超限,请稍后重试")
