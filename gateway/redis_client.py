"""The one Redis client (and connection pool) an app shares between the parts that use Redis."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.config import RedisConfig

__all__ = ["redis_client"]


def redis_client(config: RedisConfig) -> Redis:
    """Bounded everywhere: a dead Redis costs one timeout and one reconnect, never a hang.

    The pool blocks (up to the timeout) for a free connection rather than failing at once, so a
    burst of requests queues for Redis instead of being refused.
    """
    pool = BlockingConnectionPool.from_url(
        config.url,
        max_connections=64,
        timeout=config.timeout,
        socket_timeout=config.timeout,
        socket_connect_timeout=config.timeout,
        retry=Retry(NoBackoff(), retries=1),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)
