"""The one Redis client (and connection pool) an app shares between the parts that use Redis.

Nothing opens a pool of its own: whoever runs the parts (the app's ``redis_ctx``, the CLI) holds a
:class:`RedisSource`, hands it to the backend factories, and closes it when they are done. A backend
that uses Redis takes the client from it (made on the first such request, so a deployment with no
Redis part never builds one); the others ignore it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from gateway.config.model import RedisConfig
from gateway.redis.batch import Batch
from gateway.redis.health import RedisHealth
from gateway.redis.replicas import ReplicatedBatch

__all__ = ["Lua", "RedisSource", "SharedClient", "SharedCluster", "SharedRedis", "redis_client"]

MAX_CONNECTIONS = 64  # per server


class _Shared:
    """What every mode's client adds: whether its Redis is down (``health``), the commands asked
    for at once sent together (``batch``), and the store's writes the same way (``write_batch``:
    ``batch`` itself, or with ``redis.wait_replicas`` one that has replicas confirm them)."""

    health: RedisHealth
    batch: Batch
    write_batch: Batch

    async def aclose(self, *args: Any) -> None:
        await self.health.close()  # the probe uses the connections: stop it first
        await self.batch.close()
        if self.write_batch is not self.batch:
            await self.write_batch.close()
        await super().aclose(*args)  # type: ignore[misc]  # a mixin: the client class after it has aclose


class SharedRedis(_Shared, Redis):  # type: ignore[misc]  # redis-py's own bases differ on command_info
    """One server, or the primary a Sentinel names (found again after a failover)."""

    #: The clients of the Sentinels that name the primary, if they do (closed with this one).
    sentinels: Sequence[Redis] = ()

    async def aclose(self, *args: Any) -> None:
        await super().aclose(*args)
        for sentinel in self.sentinels:
            await sentinel.aclose()


class SharedCluster(_Shared, RedisCluster):  # type: ignore[misc]  # redis-py: as SharedRedis
    """A Redis Cluster: commands go to the node that holds their slot, MOVED and ASK followed."""


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The Sentinel's pool, blocking (within the budget) for a free connection like the others."""


#: The one client, whatever ``redis.mode`` is.
SharedClient = SharedRedis | SharedCluster


def redis_client(config: RedisConfig) -> SharedClient:
    """The client for ``redis.mode``, bounded everywhere: a dead Redis costs one ``timeout`` (see
    ``gateway.redis.health``), never a hang.

    Every call goes through ``gateway.redis.health.guarded``, whose one timer bounds all of it: the wait
    for a pooled connection, a reconnect, a redirection, the command. Sockets have no read/write
    timeout of their own: redis-py bounds a write with ``asyncio.wait_for``, which on Python 3.11
    can swallow the cancellation that timer sends, and the call would then run past its budget.

    A pool blocks (within that budget) for a free connection rather than failing at once, so a
    burst of requests queues for Redis instead of being refused. A connection error is retried
    once, on a fresh connection (a pooled one may have been closed by a Redis restart, its idle
    timeout or a failover); a timeout never is: it would double the wait.
    """
    options: dict[str, Any] = {
        "socket_timeout": None,
        "socket_connect_timeout": config.timeout,
        "retry": Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        "health_check_interval": 30,
        # Made once: by default every new connection looks its version up in the installed
        # packages' metadata, blocking the loop for milliseconds, 64 times over after an outage.
        "driver_info": DriverInfo(),
    }
    client: SharedClient
    if config.mode == "cluster":
        # Per node; a cluster pool cannot block, so a burst beyond it is a fast 503, not a wait.
        # redis-py types from_url as returning RedisCluster, though it builds the class it is called on
        client = cast(
            SharedCluster, SharedCluster.from_url(config.url, max_connections=MAX_CONNECTIONS, **options)
        )
    elif config.mode == "sentinel":
        sentinel = Sentinel(
            config.sentinels,
            sentinel_kwargs={"socket_timeout": config.timeout, "socket_connect_timeout": config.timeout},
            **_url_options(config.url),
        )
        primary: SharedRedis = sentinel.master_for(
            config.service,
            redis_class=SharedRedis,
            connection_pool_class=_BlockingSentinelPool,
            max_connections=MAX_CONNECTIONS,
            timeout=config.timeout,
            **options,
        )
        primary.sentinels = sentinel.sentinels
        client = primary
    else:
        pool = BlockingConnectionPool.from_url(
            config.url, max_connections=MAX_CONNECTIONS, timeout=config.timeout, **options
        )
        client = cast(SharedRedis, SharedRedis.from_pool(pool))  # as from_url: typed as Redis
    client.health = RedisHealth(client.ping, config.timeout)
    client.batch = Batch(client, config.timeout)
    client.write_batch = (
        ReplicatedBatch(client, config.timeout, config.wait_replicas)
        if config.wait_replicas
        else client.batch
    )
    return client


def _url_options(url: str) -> dict[str, Any]:
    """What a Sentinel's primary takes from ``redis.url``: its database and credentials."""
    options = parse_url(url)
    return {key: options[key] for key in ("db", "username", "password") if key in options}


#: One script call: its keys (one slot) and its arguments.
Call = tuple[Sequence[str], Sequence[EncodableT]]


class Lua:
    """A Lua script sent by digest (EVALSHA), loaded only when Redis says it lacks it.

    redis-py's own scripts ask SCRIPT EXISTS before every pipeline that holds one: a round trip
    per decision for nothing. Here the digest goes as it is (through the client's ``batch``); a
    call Redis did not run (NOSCRIPT, after a restart or SCRIPT FLUSH) runs again once the script
    is loaded.
    """

    __slots__ = ("_batch", "_client", "sha", "source")

    def __init__(self, client: SharedClient, source: str, *, write: bool = False) -> None:
        """``write``: a store write a reply depends on, confirmed by replicas when so configured."""
        self._client = client
        self._batch = client.write_batch if write else client.batch
        self.source = source
        # Redis names a script by its SHA-1: an identifier here, not a security measure.
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[EncodableT] = ()) -> Any:
        """One call's reply (the script loaded first, if Redis lacks it)."""
        try:
            return await self._batch("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._client.script_load(self.source)
            return await self._batch("EVALSHA", self.sha, len(keys), *keys, *args)

    async def many(self, calls: Sequence[Call]) -> list[Any]:
        """Every call's reply, in order: all sent at once (they may touch different slots)."""
        if len(calls) == 1:
            keys, args = calls[0]
            return [await self(keys, args)]
        replies = await self._all(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:  # those did not run at all: running them now runs them once
            await self._client.script_load(self.source)
            for i, reply in zip(missing, await self._all([calls[i] for i in missing]), strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies

    async def _all(self, calls: Sequence[Call]) -> list[Any]:
        futures = [self._batch("EVALSHA", self.sha, len(keys), *keys, *args) for keys, args in calls]
        return await asyncio.gather(*futures, return_exceptions=True)


class RedisSource:
    """The one client of an app (or a CLI run), made when a part first asks for it."""

    def __init__(self, config: RedisConfig) -> None:
        self._config = config
        self._client: SharedClient | None = None

    def client(self) -> SharedClient:
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
