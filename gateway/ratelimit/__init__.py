"""Rate limiting: a token bucket per account and sliding windows per phone number.

Backends (``memory``, ``redis``, looked up by name in ``gateway.ratelimit.backends``) implement
:class:`RateLimiter`; the policy around them — which routes, what a request costs, what to do when
the backend fails — lives in the middleware and the sender, so both backends answer exactly the
same questions.

A request may cost more than a bucket holds (a batch of 100 against a burst of 40): it is admitted
when the bucket holds at least ``min(cost, burst)`` tokens and leaves it in debt, so large batches
stay possible while the long-run rate still holds.
"""

from __future__ import annotations

import hmac
import math
from typing import Protocol

import msgspec

from gateway.config.model import WindowConfig

__all__ = [
    "WINDOW_ALLOWS",
    "BucketDecision",
    "LimiterUnavailable",
    "RateLimiter",
    "Tokens",
    "WindowDecision",
    "bucket_decision",
    "phone_hash",
]


class LimiterUnavailable(Exception):
    """The backend could not answer; the policy (``on_backend_error``) decides what follows."""


class BucketDecision(msgspec.Struct, frozen=True):
    allowed: bool
    limit: int  # the bucket's capacity
    remaining: int  # whole tokens left after this request
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until this request would be admitted (0 when it was)


class WindowDecision(msgspec.Struct, frozen=True):
    allowed: bool
    retry_after: int  # seconds until the fullest window has room again (0 when allowed)


#: A window that lets a number through: one frozen value every backend answers with.
WINDOW_ALLOWS = WindowDecision(True, 0)


def bucket_decision(tokens: float, allowed: bool, rate: float, burst: int, cost: int) -> BucketDecision:
    """Headers' numbers from a bucket's level after the decision; shared by every backend."""
    need = min(cost, burst)
    return BucketDecision(
        allowed=allowed,
        limit=burst,
        remaining=max(0, math.floor(tokens)),
        reset=max(0, math.ceil((burst - tokens) / rate)),
        retry_after=0 if allowed else max(1, math.ceil((need - tokens) / rate)),
    )


def phone_hash(secret: bytes, e164: str) -> str:
    """A keyed hash of the normalised number: limits can find it again, nobody can read it."""
    return hmac.digest(secret, e164.encode(), "sha256")[:16].hex()


class Tokens:
    """What a request costs its account's bucket, taken once: by the sender in one limiter call
    with the per-number windows (``RateLimiter.decide``), else by the route on its own (a request
    refused or answered before it sends). ``decision`` is None until taken, and when the backend
    failed and the policy let the request pass."""

    __slots__ = ("account_id", "burst", "cost", "decision", "rate", "taken")

    def __init__(self, account_id: int, rate: float, burst: int, cost: int) -> None:
        self.account_id, self.rate, self.burst, self.cost = account_id, rate, burst, cost
        self.decision: BucketDecision | None = None
        self.taken = False


class RateLimiter(Protocol):
    async def take(self, account_id: int, rate: float, burst: int, cost: int) -> BucketDecision:
        """Take ``cost`` tokens from the account's bucket if it has room; never partially."""
        ...

    async def hit(
        self, phone_hashes: list[str], windows: tuple[WindowConfig, ...], hit_id: str
    ) -> list[WindowDecision]:
        """Count one send (named ``hit_id``) to each number unless one of its windows is full."""
        ...

    async def release(self, phone_hashes: list[str], hit_id: str) -> None:
        """Take back the hits of a request that was refused after all (nothing was sent)."""
        ...

    async def decide(
        self, tokens: Tokens, phone_hashes: list[str], windows: tuple[WindowConfig, ...], hit_id: str
    ) -> tuple[BucketDecision, list[WindowDecision]]:
        """``take`` and then ``hit`` as one decision: no number's window counts a request its
        bucket refused (its decisions are then all "allowed")."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
