"""Rate-limit backends by name (``ratelimit.backend``), in one table.

Each entry builds its limiter from the config and the :class:`~gateway.redis.client.RedisSource`
of whoever runs it: the Redis backend takes the app's one shared client from it, the memory one
ignores it. A new backend is one module implementing :class:`gateway.ratelimit.RateLimiter` (run
through ``tests/test_ratelimit_backends.py``) plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.config.model import GatewayConfig
from gateway.ratelimit import RateLimiter
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.redis import RedisLimiter
from gateway.redis.client import RedisSource

__all__ = ["LIMITERS", "LimiterFactory", "build_limiter"]

LimiterFactory = Callable[[GatewayConfig, RedisSource], RateLimiter]

LIMITERS: dict[str, LimiterFactory] = {
    "memory": lambda config, redis: MemoryLimiter(),
    "redis": lambda config, redis: RedisLimiter(redis.client(), config.redis.key_prefix),
}


def build_limiter(config: GatewayConfig, redis: RedisSource) -> RateLimiter:
    """The limiter ``ratelimit.backend`` names (one the config has checked)."""
    return LIMITERS[config.ratelimit.backend](config, redis)
