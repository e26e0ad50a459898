"""Whether the shared Redis is known to be down, and the one probe that finds out when it is back.

A hung Redis costs every caller its full timeout, so the first call that fails to reach it starts an
*outage*: every guarded call then fails at once, and one background probe PINGs until Redis answers.
An error reply is not an outage. Every guarded call is bounded as a whole by ``redis.timeout``, and
within a request ``RedisBudget`` shares that bound over all its calls.
Details: (docs/deployment.md, "When Redis is gone"; docs/stores.md, "One client").
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["CALL_ENDS", "PROBE_INTERVAL", "REQUEST_BUDGET", "RedisBudget", "RedisHealth", "guarded"]

log = logging.getLogger("smsedge.redis")

PROBE_INTERVAL = 0.5  # seconds between the end of one probe and the next
# Redis did not answer: refused, reset, pool exhausted, timed out (builtin TimeoutError is an OSError).
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisBudget:
    """Seconds one request has spent waiting on Redis so far."""

    __slots__ = ("spent",)

    def __init__(self) -> None:
        self.spent = 0.0


#: The current request's budget (set by the request-context middleware); None outside a request.
REQUEST_BUDGET: ContextVar[RedisBudget | None] = ContextVar("redis_budget", default=None)
#: When the guarded call under way must be done (``time.monotonic()``); None outside one. A
#: command that blocks on purpose (WAIT) is given less, so that it never looks like an outage.
CALL_ENDS: ContextVar[float | None] = ContextVar("redis_call_ends", default=None)


class RedisHealth:
    """The outage state of one client; ``down`` is the one attribute the hot path reads."""

    def __init__(
        self, ping: Callable[[], Awaitable[object]], timeout: float, interval: float = PROBE_INTERVAL
    ) -> None:
        self.down = False
        self.timeout = timeout
        self._ping = ping
        self._interval = interval
        self._probe: asyncio.Task[None] | None = None

    def failed(self, exc: BaseException) -> None:
        """Note a failed call: one that did not reach Redis starts an outage (and its probe)."""
        if self.down or not isinstance(exc, _UNREACHABLE):
            return
        self.down = True
        log.error("redis unreachable, calls fail fast until it answers a probe: %s", _reason(exc, self))
        self._probe = asyncio.get_running_loop().create_task(self._until_up(), name="redis-probe")

    async def _until_up(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                async with asyncio.timeout(self.timeout):
                    await self._ping()
            except (RedisError, OSError):
                continue
            self.down = False
            log.warning("redis answers again")
            return

    async def close(self) -> None:
        """Stop the probe, if one runs (before the client it uses is closed)."""
        probe, self._probe = self._probe, None
        if probe is not None and not probe.done():
            probe.cancel()
            await asyncio.wait([probe])


class _Guarded(Protocol):
    health: RedisHealth


Owner = TypeVar("Owner", bound=_Guarded)
P = ParamSpec("P")
T = TypeVar("T")
Method = Callable[Concatenate[Owner, P], Coroutine[Any, Any, T]]  # async defs, as the protocols declare


def guarded(unavailable: Callable[[str], Exception]) -> Callable[[Method[Owner, P, T]], Method[Owner, P, T]]:
    """Make a method of an object with a ``health`` fail fast in an outage and take at most
    ``health.timeout``; every Redis failure becomes ``unavailable(reason)``."""

    def decorate(method: Method[Owner, P, T]) -> Method[Owner, P, T]:
        @functools.wraps(method)
        async def call(self: Owner, /, *args: P.args, **kwargs: P.kwargs) -> T:
            health = self.health
            if health.down:
                raise unavailable("redis: unreachable (outage), waiting for it to answer again")
            budget = REQUEST_BUDGET.get()
            allowed = health.timeout - budget.spent if budget else health.timeout
            if allowed <= 0:
                raise unavailable("redis: this request has used up its redis.timeout")
            started = time.monotonic()
            ends = CALL_ENDS.set(started + allowed)
            try:
                async with asyncio.timeout(allowed):
                    return await method(self, *args, **kwargs)
            except (RedisError, OSError) as exc:
                health.failed(exc)
                raise unavailable(f"redis: {_reason(exc, health)}") from exc
            finally:
                CALL_ENDS.reset(ends)
                if budget:
                    budget.spent += time.monotonic() - started

        return call

    return decorate


def _reason(exc: BaseException, health: RedisHealth) -> str:
    # asyncio.timeout raises a bare TimeoutError: say what it means.
    return str(exc) or f"no answer within {health.timeout:g} s"
