"""In-process rate limiting: exact under asyncio (no await inside a decision), O(1) per request.

Idle state is dropped: a bucket once it would be full again, a number's history once it is older
than the longest window. Entries are kept in least-recently-used order, so the sweep only ever looks
at the front.
"""

from __future__ import annotations

import functools
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import NamedTuple

from gateway.config.model import WindowConfig
from gateway.ratelimit import WINDOW_ALLOWS, BucketDecision, Tokens, WindowDecision, bucket_decision

__all__ = ["MemoryLimiter"]

_SWEEP_PER_CALL = 4


class _Shape(NamedTuple):
    """What the limiter needs to know of a set of windows, worked out once per set."""

    kept: int  # hits a number's history keeps: the largest limit
    longest: int  # seconds: a history quiet for this long is dropped
    room_when_empty: bool  # every window takes a first hit (limits of at least 1)


@functools.lru_cache(maxsize=64)
def _shape(windows: tuple[WindowConfig, ...]) -> _Shape:
    return _Shape(
        kept=max((w.limit for w in windows), default=1),
        longest=max((w.seconds for w in windows), default=0),
        room_when_empty=all(w.limit >= 1 for w in windows),
    )


class MemoryLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: OrderedDict[int, tuple[float, float, float]] = OrderedDict()  # tokens, at, full_at
        self._hits: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()  # (at, hit_id)

    async def take(self, account_id: int, rate: float, burst: int, cost: int) -> BucketDecision:
        now = self._clock()
        tokens, at, _ = self._buckets.pop(account_id, (float(burst), now, now))
        tokens = min(float(burst), tokens + (now - at) * rate)
        allowed = tokens >= min(cost, burst)
        if allowed:
            tokens -= cost
        self._buckets[account_id] = (tokens, now, now + (burst - tokens) / rate)
        self._sweep_buckets(now)
        return bucket_decision(tokens, allowed, rate, burst, cost)

    def _sweep_buckets(self, now: float) -> None:
        for _ in range(_SWEEP_PER_CALL):
            oldest = next(iter(self._buckets.items()), None)
            if oldest is None or oldest[1][2] > now:
                return
            del self._buckets[oldest[0]]

    async def hit(
        self, phone_hashes: list[str], windows: tuple[WindowConfig, ...], hit_id: str
    ) -> list[WindowDecision]:
        now = self._clock()
        shape = _shape(windows)
        decisions = [self._hit_one(phone_hash, windows, shape, now, hit_id) for phone_hash in phone_hashes]
        self._sweep_hits(now, shape.longest)
        return decisions

    def _hit_one(
        self, phone_hash: str, windows: tuple[WindowConfig, ...], shape: _Shape, now: float, hit_id: str
    ) -> WindowDecision:
        history = self._hits.pop(phone_hash, None)
        if history is None:  # a number not seen within its longest window: every window has room
            history = deque(maxlen=shape.kept)
            self._hits[phone_hash] = history
            if shape.room_when_empty:
                history.append((now, hit_id))
                return WINDOW_ALLOWS
        self._hits[phone_hash] = history
        retry_after = 0.0
        for window in windows:
            inside = [at for at, _ in history if at > now - window.seconds]
            if len(inside) >= window.limit:
                # Room again once the oldest hit that keeps the window full has aged out.
                retry_after = max(retry_after, inside[len(inside) - window.limit] + window.seconds - now)
        if retry_after:
            return WindowDecision(False, max(1, math.ceil(retry_after)))
        history.append((now, hit_id))
        return WINDOW_ALLOWS

    async def decide(
        self, tokens: Tokens, phone_hashes: list[str], windows: tuple[WindowConfig, ...], hit_id: str
    ) -> tuple[BucketDecision, list[WindowDecision]]:
        bucket = await self.take(tokens.account_id, tokens.rate, tokens.burst, tokens.cost)
        if not bucket.allowed or not windows:
            return bucket, [WINDOW_ALLOWS] * len(phone_hashes)
        return bucket, await self.hit(phone_hashes, windows, hit_id)

    async def release(self, phone_hashes: list[str], hit_id: str) -> None:
        for phone_hash in phone_hashes:
            history = self._hits.get(phone_hash)
            if history is not None:
                kept = [entry for entry in history if entry[1] != hit_id]
                history.clear()
                history.extend(kept)

    def _sweep_hits(self, now: float, longest: int) -> None:
        for _ in range(_SWEEP_PER_CALL):
            oldest = next(iter(self._hits.items()), None)
            if oldest is None or (oldest[1] and oldest[1][-1][0] > now - longest):
                return
            del self._hits[oldest[0]]

    async def ping(self) -> None:
        """Always answers: it lives in this process."""

    async def close(self) -> None:
        self._buckets.clear()
        self._hits.clear()
