"""The account's token bucket in front of the sending routes.

Only sends are limited: they spend money and carrier capacity, reads do not. A send costs one token,
a batch one per distinct entry (known from the body before validation; a refused body costs what it
claimed). A refused request writes no record and charges nothing, because it never reaches the
handler. Every limited response carries ``RateLimit-Limit/-Remaining/-Reset``; a 429 ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api.validation import MAX_BATCH
from gateway.config.model import BucketConfig
from gateway.errors import ApiError
from gateway.keys import ACCOUNT, LIMITER, METRICS, RESPONSE_HEADERS, ROUTE
from gateway.ratelimit import BucketDecision

__all__ = ["rate_limit"]


async def _one(request: web.Request) -> int:
    return 1


async def _per_number(request: web.Request) -> int:
    try:
        phones = orjson.loads(await request.read()).get("phones")
    except (orjson.JSONDecodeError, AttributeError):
        return 1
    if not isinstance(phones, list):
        return 1
    return max(1, min(MAX_BATCH, len({p for p in phones if isinstance(p, str)})))


COSTS: dict[str, Callable[[web.Request], Awaitable[int]]] = {
    "/api/sms/send": _one,
    "/api/sms/batch-send": _per_number,
}


def _headers(decision: BucketDecision) -> dict[str, str]:
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after)
    return headers


def rate_limit(*, default: BucketConfig) -> web.middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        cost_of = COSTS.get(request[ROUTE]) if request.method == "POST" else None
        account = request.get(ACCOUNT)
        if cost_of is None or account is None:
            return await handler(request)
        rate, burst = (account.rate, account.burst) if account.rate else (default.rate, default.burst)
        decision = await request.app[LIMITER].take(account.id, rate, burst, await cost_of(request))
        if decision is not None:
            request[RESPONSE_HEADERS].update(_headers(decision))
            if not decision.allowed:
                request.app[METRICS].ratelimit_rejections.labels("account").inc()
                raise ApiError(429, "RATE_LIMITED", "请求频率超限,请稍后重试")
        return await handler(request)

    return middleware
