"""The account's token bucket in front of the routes that declare a cost.

A route says what it costs next to its handler (``@costs(one_token)``); a route without a cost is
not limited (reads: they spend neither money nor carrier capacity). The cost is known before the
body is checked, so a refused body costs what it claimed. A request that sends has its tokens
taken by the sender, in the same limiter call as the per-number windows (one decision, one Redis
round trip); any other — refused, replayed — has them taken by its route once its handler is
done, and a 429 then wins over the handler's answer, as if the bucket had been asked first. A
refused request writes no record and charges nothing. Every limited response carries
``RateLimit-Limit/-Remaining/-Reset``; a 429 ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from gateway.errors import rate_limited
from gateway.keys import LIMITER, METRICS, RATE_LIMIT_HEADERS, RUNTIME
from gateway.ratelimit import BucketDecision, Tokens
from gateway.store.base import Account

__all__ = ["Cost", "costs", "one_token", "take_tokens", "tokens_for"]

Cost = Callable[[web.Request], Awaitable[int]]
H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])


async def one_token(request: web.Request) -> int:
    return 1


def costs(cost: Cost) -> Callable[[H], H]:
    """Declare what a request to this handler takes from the account's bucket."""

    def declare(handler: H) -> H:
        handler.rate_limit_cost = cost  # type: ignore[attr-defined]  # read back by getattr (api_route)
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


def tokens_for(request: web.Request, account: Account, cost: int) -> Tokens:
    """What the request costs: from the account's own bucket, else ``ratelimit.account`` of the
    current (reloadable) config."""
    default = request.app[RUNTIME].current.config.ratelimit.account
    if account.rate:
        return Tokens(account.id, account.rate, account.burst or default.burst, cost)
    return Tokens(account.id, default.rate, default.burst, cost)


async def take_tokens(request: web.Request, tokens: Tokens) -> None:
    """Take ``tokens`` on their own, unless the sender took them already; 429 when the bucket has
    not enough. Either way the answer gets the bucket's headers."""
    if not tokens.taken:
        app = request.app
        tokens.taken = True
        tokens.decision = await app[LIMITER].take(tokens.account_id, tokens.rate, tokens.burst, tokens.cost)
        if tokens.decision is not None and not tokens.decision.allowed:
            app[METRICS].reject("account")
    if tokens.decision is not None:
        request[RATE_LIMIT_HEADERS] = _headers(tokens.decision)
        if not tokens.decision.allowed:
            raise rate_limited()
