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
from aiohttp.typedefs import Handler

from gateway.errors import ApiError
from gateway.keys import ACCOUNT, LIMITER, METRICS, RESPONSE_HEADERS, RUNTIME
from gateway.ratelimit import BucketDecision

__all__ = ["Cost", "costs", "one_token", "rate_limit"]

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


def rate_limit() -> web.middleware:
    """The account's own bucket, else ``ratelimit.account`` of the current (reloadable) config."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # The route's own handler (aiohttp's 404/405 answers declare nothing).
        cost_of: Cost | None = getattr(request.match_info.handler, "rate_limit_cost", None)
        account = request.get(ACCOUNT)
        if cost_of is None or account is None:
            return await handler(request)
        if account.rate:
            rate, burst = account.rate, account.burst
        else:
            default = request.app[RUNTIME].current.config.ratelimit.account
            rate, burst = default.rate, default.burst
        decision = await request.app[LIMITER].take(account.id, rate, burst, await cost_of(request))
        if decision is not None:
            request[RESPONSE_HEADERS].update(_headers(decision))
            if not decision.allowed:
                request.app[METRICS].reject("account")
                raise ApiError(429, "RATE_LIMITED", "请求频率超限,请稍后重试")
        return await handler(request)

    return middleware
