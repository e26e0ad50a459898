"""The per-number windows (``ratelimit.phone``, anti SMS-bombing) as the sender applies them.

A number is known to the limiter (and to records and receipts) only by a keyed hash, never as
itself. A number whose window is full fails without cost or record; the hits of a request that is
refused after all (balance, store) are taken back, so the windows count only what was sent.
"""

from __future__ import annotations

from gateway.carriers.base import FailureKind, Outcome
from gateway.config.model import WindowConfig
from gateway.errors import rate_limited
from gateway.metrics import Metrics
from gateway.phones import Phone
from gateway.ratelimit import Tokens, phone_hash
from gateway.ratelimit.guard import GuardedLimiter
from gateway.sending.model import OWN_PHONE_LIMIT

__all__ = ["PhoneWindows"]


class PhoneWindows:
    def __init__(
        self, limiter: GuardedLimiter, windows: tuple[WindowConfig, ...], secret: bytes, metrics: Metrics
    ) -> None:
        self._rejections = metrics.ratelimit_rejections.labels("phone")  # looked up once
        self._account_rejections = metrics.ratelimit_rejections.labels("account")
        self._limiter = limiter
        self._windows = windows
        self._secret = secret

    def phone_hash(self, e164: str) -> str:
        """The keyed hash a number is known by in limits and records (never the number itself)."""
        return phone_hash(self._secret, e164)

    def phone_hashes(self, phones: list[Phone]) -> list[str]:
        """Each number's keyed hash, in order."""
        return [phone_hash(self._secret, phone.e164) for phone in phones]

    async def refused(
        self, phones: list[Phone], phone_hashes: list[str], hit_id: str, tokens: Tokens | None = None
    ) -> dict[str, Outcome]:
        """Count a send (``hit_id``) to each number (``phone_hashes`` are theirs); the ones whose window is
        full, with their refusal. With ``tokens``, the account's bucket is decided in the same
        limiter call, first: a request it refuses is 429 and counts in no window."""
        if tokens is not None:
            decisions = await self._limiter.decide(tokens, phone_hashes, self._windows, hit_id)
            if tokens.decision is not None and not tokens.decision.allowed:
                self._account_rejections.inc()
                raise rate_limited()
        elif self._windows:
            decisions = await self._limiter.hit(phone_hashes, self._windows, hit_id)
        else:
            return {}
        refused = {
            phone.e164: Outcome(
                phone.e164,
                False,
                kind=FailureKind.RATE_LIMITED,
                code=OWN_PHONE_LIMIT,
                message=f"请 {decision.retry_after} 秒后重试",
                retry_after=decision.retry_after,
            )
            for phone, decision in zip(phones, decisions, strict=True)
            if not decision.allowed
        }
        if refused:
            self._rejections.inc(len(refused))
        return refused

    async def release(self, phone_hashes: list[str], hit_id: str) -> None:
        """Take back the hits of ``hit_id``: the send was refused before any carrier call."""
        if self._windows:
            await self._limiter.release(phone_hashes, hit_id)
