"""The policy around a rate-limit backend: what a failed decision means (``on_backend_error``).

``allow`` fails open: the request goes on, the failure is counted in a metric and logged once per
outage (not once per request). ``deny`` answers 503. Both the account bucket and the per-number
windows go through here, so they can never follow different policies. A backend that knows of an
outage (the Redis one, see ``gateway.redis.health``) fails at once, so the policy costs no waiting.
"""

from __future__ import annotations

import logging

from gateway.config.model import WindowConfig
from gateway.errors import UNAVAILABLE, error_kind
from gateway.metrics import Metrics
from gateway.ratelimit import (
    WINDOW_ALLOWS,
    BucketDecision,
    LimiterUnavailable,
    RateLimiter,
    Tokens,
    WindowDecision,
)

__all__ = ["GuardedLimiter", "limiter_unavailable"]

log = logging.getLogger("smsedge.ratelimit")


limiter_unavailable = error_kind(503, UNAVAILABLE, "服务暂不可用:限流服务无法访问,请稍后重试")


class GuardedLimiter:
    def __init__(self, backend: RateLimiter, on_backend_error: str, metrics: Metrics) -> None:
        self.backend = backend
        self._fail_open = on_backend_error == "allow"
        self._metrics = metrics
        self._in_outage = False

    async def take(self, account_id: int, rate: float, burst: int, cost: int) -> BucketDecision | None:
        """The bucket's decision, or None when the backend failed and the policy lets it pass."""
        try:
            decision = await self.backend.take(account_id, rate, burst, cost)
        except LimiterUnavailable as exc:
            self._failed(exc)
            return None
        self._recovered()
        return decision

    async def hit(
        self, phone_hashes: list[str], windows: tuple[WindowConfig, ...], hit_id: str
    ) -> list[WindowDecision]:
        try:
            decisions = await self.backend.hit(phone_hashes, windows, hit_id)
        except LimiterUnavailable as exc:
            self._failed(exc)
            return [WINDOW_ALLOWS] * len(phone_hashes)
        self._recovered()
        return decisions

    async def decide(
        self, tokens: Tokens, phone_hashes: list[str], windows: tuple[WindowConfig, ...], hit_id: str
    ) -> list[WindowDecision]:
        """The bucket and the windows in one call: ``tokens`` is taken (its decision kept, None when
        the backend failed and the policy lets it pass), then each number's window decision."""
        tokens.taken = True
        try:
            tokens.decision, decisions = await self.backend.decide(tokens, phone_hashes, windows, hit_id)
        except LimiterUnavailable as exc:
            self._failed(exc, 1 + bool(windows and phone_hashes))
            return [WINDOW_ALLOWS] * len(phone_hashes)
        self._recovered()
        return decisions

    async def release(self, phone_hashes: list[str], hit_id: str) -> None:
        """Best effort: a hit that cannot be taken back only makes a window stricter."""
        try:
            await self.backend.release(phone_hashes, hit_id)
        except LimiterUnavailable as exc:
            if not self._in_outage:  # in a known outage it was logged once already
                log.warning("could not release per-number hits: %s", exc)

    def _failed(self, exc: LimiterUnavailable, decisions: int = 1) -> None:
        """``decisions`` the backend could not make (a bucket's, a request's windows')."""
        self._metrics.ratelimit_backend_errors.inc(decisions)
        if not self._in_outage:
            self._in_outage = True
            policy = "failing open" if self._fail_open else "refusing sends with 503"
            log.error("rate-limit backend unavailable, %s until it answers: %s", policy, exc)
        if not self._fail_open:
            raise limiter_unavailable() from None

    def _recovered(self) -> None:
        if self._in_outage:
            self._in_outage = False
            log.warning("rate-limit backend answers again; limits apply")
