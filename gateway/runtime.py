"""What a request uses that a reload may change, held as one immutable object behind one reference.

A request reads ``slot.current`` once and keeps what it got, so a reload (``gateway.process.reload``) that
swaps in a new :class:`Runtime` never changes the config under a request in flight. The old runtime's
carriers are closed only after :func:`grace_seconds` of the old config: longer than any send on it
can take (every backend's timeout and retries), so no request still using them is cut short, and
no per-request reference count is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from gateway.carriers.base import Carrier
from gateway.config.model import GatewayConfig
from gateway.sending.circuit import CircuitBreaker
from gateway.sending.sender import Sender

__all__ = ["Runtime", "RuntimeSlot", "grace_seconds"]

_MARGIN = 10.0  # seconds past the longest send, for settling and the answer


@dataclass(frozen=True, slots=True)
class Runtime:
    config: GatewayConfig  # server, store and redis as at start: they need a restart
    carriers: dict[str, Carrier[Any]]
    breakers: dict[str, CircuitBreaker]
    sender: Sender

    async def close(self) -> None:
        for carrier in self.carriers.values():
            await carrier.close()


def grace_seconds(config: GatewayConfig) -> float:
    """An upper bound on one send: every backend tried with all its retries and backoffs."""
    return _MARGIN + sum(
        backend.timeout * (backend.retries + 1) + 2.0 * backend.retries
        for backend in config.providers.backends.values()
    )


class RuntimeSlot:
    """The one reference requests read; retired runtimes are closed after their grace period."""

    __slots__ = ("_retiring", "current")

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime
        self._retiring: dict[asyncio.Task[None], Runtime] = {}

    def swap(self, runtime: Runtime) -> None:
        old, self.current = self.current, runtime
        task = asyncio.get_running_loop().create_task(self._close_later(old))
        self._retiring[task] = old
        task.add_done_callback(self._retiring.pop)

    @staticmethod
    async def _close_later(old: Runtime) -> None:
        await asyncio.sleep(grace_seconds(old.config))
        await old.close()

    async def close(self) -> None:
        """On shutdown, when requests have drained: close the current and every retired runtime."""
        retiring = list(self._retiring.items())
        for task, old in retiring:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await old.close()
        await self.current.close()
