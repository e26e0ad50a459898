"""The one Redis client (and connection pool) an app shares between the parts that use Redis.

Nothing opens a pool of its own: whoever runs the parts (the app's ``redis_ctx``, the CLI) holds a
:class:`RedisSource`, hands it to the backend factories, and closes it when they are done. A backend
that uses Redis takes the client from it (made on the first such request, so a deployment with no
Redis part never builds one); the others ignore it.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.config.model import RedisConfig
from gateway.redis_health import RedisHealth

__all__ = ["RedisSource", "SharedRedis", "redis_client"]


class SharedRedis(Redis):
    """A client that knows whether its Redis is down (``health``), for every part that uses it."""

    health: RedisHealth

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self.health.close()  # the probe uses the pool: stop it first
        await super().aclose(close_connection_pool)


def redis_client(config: RedisConfig) -> SharedRedis:
    """Bounded everywhere: a dead Redis costs one ``timeout`` (see ``redis_health``), never a hang.

    Every call goes through ``redis_health.guarded``, whose one timer bounds all of it: the wait
    for a pooled connection, a reconnect, the command. Sockets have no read/write timeout of their
    own: redis-py bounds a write with ``asyncio.wait_for``, which on Python 3.11 can swallow the
    cancellation that timer sends, and the call would then run past its budget.

    The pool blocks (within that budget) for a free connection rather than failing at once, so a
    burst of requests queues for Redis instead of being refused. A connection error is retried
    once, on a fresh connection (a pooled one may have been closed by a Redis restart or its idle
    timeout); a timeout never is: it would double the wait.
    """
    pool = BlockingConnectionPool.from_url(
        config.url,
        max_connections=64,
        timeout=config.timeout,
        socket_timeout=None,
        socket_connect_timeout=config.timeout,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        health_check_interval=30,
        # Made once: by default every new connection looks its version up in the installed
        # packages' metadata, blocking the loop for milliseconds, 64 times over after an outage.
        driver_info=DriverInfo(),
    )
    client = SharedRedis.from_pool(pool)
    client.health = RedisHealth(client.ping, config.timeout)
    return client


class RedisSource:
    """The one client of an app (or a CLI run), made when a part first asks for it."""

    def __init__(self, config: RedisConfig) -> None:
        self._config = config
        self._client: SharedRedis | None = None

    def client(self) -> SharedRedis:
        """The shared client; every caller gets the same one."""
        if self._client is None:
            self._client = redis_client(self._config)
        return self._client

    async def aclose(self) -> None:
        """Close the client, if one was made (after every part that uses it has closed)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> RedisSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
