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
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from gateway.config.model import RedisConfig
from gateway.redis_health import RedisHealth

__all__ = ["Batch", "Lua", "RedisSource", "SharedClient", "SharedCluster", "SharedRedis", "redis_client"]

MAX_CONNECTIONS = 64  # per server


class Batch:
    """Commands asked for in this turn of the event loop and the next go to Redis together: one
    pipeline (automatic pipelining).

    Under load many requests wait on Redis at once, and their replies come back together, so their
    next commands are asked for within a turn or two as well: one write and one read (system calls
    that cost more than the commands) for all of them, instead of one each. Waiting one more turn
    before sending gathered nearly twice the commands per write (about 13 against 7), for less CPU
    per send (``bench.cpu``); a third turn did not pay. Each command is still its own (a script
    stays atomic; nothing runs in a transaction with another request's), and each caller still
    waits for its own reply. The pipeline is bounded by ``timeout``, as a call is.
    """

    def __init__(self, client: Redis | RedisCluster, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        self._queue: list[tuple[tuple[object, ...], asyncio.Future[Any]]] = []
        self._running: set[asyncio.Task[None]] = set()

    def __call__(self, *command: object) -> asyncio.Future[Any]:
        """The reply to ``command``, sent with the others asked for in this turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._wait_one_more_turn, loop)
        self._queue.append((command, future))
        return future

    def _wait_one_more_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        # Replies read in this turn wake their callers in the next: their commands join this batch.
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _send(self, batch: list[tuple[tuple[object, ...], asyncio.Future[Any]]]) -> None:
        replies: list[Any]
        try:
            async with asyncio.timeout(self._timeout):
                if len(batch) == 1:
                    replies = [await self._client.execute_command(*batch[0][0])]
                else:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for command, _ in batch:
                            pipe.execute_command(*command)
                        replies = await pipe.execute(raise_on_error=False)
        except (Exception, asyncio.CancelledError) as exc:  # each caller gets the failure
            failure = exc if isinstance(exc, Exception) else RedisConnectionError("client closed")
            replies = [failure] * len(batch)
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller gave up (timed out, cancelled)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def close(self) -> None:
        """Stop the pipelines still waiting (their callers fail)."""
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(list(self._running))


class _Shared:
    """What every mode's client adds: whether its Redis is down (``health``), and the commands
    asked for at once sent together (``batch``)."""

    health: RedisHealth
    batch: Batch

    async def aclose(self, *args: Any) -> None:
        await self.health.close()  # the probe uses the connections: stop it first
        await self.batch.close()
        await super().aclose(*args)  # type: ignore[misc]


class SharedRedis(_Shared, Redis):
    """One server, or the primary a Sentinel names (found again after a failover)."""

    #: The clients of the Sentinels that name the primary, if they do (closed with this one).
    sentinels: Sequence[Redis] = ()

    async def aclose(self, *args: Any) -> None:
        await super().aclose(*args)
        for sentinel in self.sentinels:
            await sentinel.aclose()


class SharedCluster(_Shared, RedisCluster):
    """A Redis Cluster: commands go to the node that holds their slot, MOVED and ASK followed."""


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The Sentinel's pool, blocking (within the budget) for a free connection like the others."""


#: The one client, whatever ``redis.mode`` is.
SharedClient = SharedRedis | SharedCluster


def redis_client(config: RedisConfig) -> SharedClient:
    """The client for ``redis.mode``, bounded everywhere: a dead Redis costs one ``timeout`` (see
    ``redis_health``), never a hang.

    Every call goes through ``redis_health.guarded``, whose one timer bounds all of it: the wait
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
        client = SharedCluster.from_url(config.url, max_connections=MAX_CONNECTIONS, **options)
    elif config.mode == "sentinel":
        sentinel = Sentinel(
            config.sentinels,
            sentinel_kwargs={"socket_timeout": config.timeout,
                             "socket_connect_timeout": config.timeout},
            **_url_options(config.url),
        )
        client = sentinel.master_for(
            config.service, redis_class=SharedRedis, connection_pool_class=_BlockingSentinelPool,
            max_connections=MAX_CONNECTIONS, timeout=config.timeout, **options,
        )
        client.sentinels = sentinel.sentinels
    else:
        pool = BlockingConnectionPool.from_url(
            config.url, max_connections=MAX_CONNECTIONS, timeout=config.timeout, **options
        )
        client = SharedRedis.from_pool(pool)
    client.health = RedisHealth(client.ping, config.timeout)
    client.batch = Batch(client, config.timeout)
    return client


def _url_options(url: str) -> dict[str, Any]:
    """What a Sentinel's primary takes from ``redis.url``: its database and credentials."""
    options = parse_url(url)
    return {key: options[key] for key in ("db", "username", "password") if key in options}


#: One script call: its keys (one slot) and its arguments.
Call = tuple[Sequence[str], Sequence[object]]


class Lua:
    """A Lua script sent by digest (EVALSHA), loaded only when Redis says it lacks it.

    redis-py's own scripts ask SCRIPT EXISTS before every pipeline that holds one: a round trip
    per decision for nothing. Here the digest goes as it is (through the client's ``batch``); a
    call Redis did not run (NOSCRIPT, after a restart or SCRIPT FLUSH) runs again once the script
    is loaded.
    """

    __slots__ = ("_batch", "_client", "sha", "source")

    def __init__(self, client: SharedClient, source: str) -> None:
        self._client = client
        self._batch = client.batch
        self.source = source
        # Redis names a script by its SHA-1: an identifier here, not a security measure.
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[object] = ()) -> Any:
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
