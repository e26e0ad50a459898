"""Isolation between receivers: a concurrency cap, a bounded queue and a circuit per host.

One slow or dead receiver must not delay another's events: each host gets ``per_host`` POSTs at
once and a short queue; events beyond it are handed back to the store unposted, due again shortly.
After ``failures`` failed POSTs in a row the host's circuit opens: its events are handed back due
when ``cooldown`` has passed, then one failure more opens it again.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

__all__ = ["DEFER_MS", "HostGate", "HostGates", "host_of"]

#: How soon an event turned away by a full host queue is offered again.
DEFER_MS = 500


def host_of(url: str) -> str:
    return urlsplit(url).netloc.lower()


class HostGate:
    def __init__(self, per_host: int, failures: int, cooldown: float) -> None:
        self.slots = asyncio.Semaphore(per_host)
        self.waiting = 0  # events of this host in memory: POSTing or queued for a slot
        self._limit, self._failures, self._cooldown = per_host * 2, failures, cooldown
        self._failed = 0
        self._open_until = 0.0

    def admits(self, now: float) -> bool:
        """Whether another event of this host may be queued now."""
        return self.waiting < self._limit and not self.is_open(now)

    def is_open(self, now: float) -> bool:
        if self._open_until and now >= self._open_until:  # cooled down: half open
            self._open_until, self._failed = 0.0, self._failures - 1
        return bool(self._open_until)

    def reopens_ms(self, now_ms: int) -> int:
        """When an event this gate turned away is due again: once the circuit closes, or shortly."""
        return max(now_ms + DEFER_MS, int(self._open_until * 1000))

    def succeeded(self) -> None:
        self._failed = 0

    def failed(self, now: float) -> None:
        self._failed += 1
        if self._failed >= self._failures:
            self._open_until = now + self._cooldown


class HostGates:
    def __init__(self, per_host: int, failures: int, cooldown: float) -> None:
        self._settings = (per_host, failures, cooldown)
        self._gates: dict[str, HostGate] = {}

    def __getitem__(self, host: str) -> HostGate:
        gate = self._gates.get(host)
        if gate is None:
            gate = self._gates[host] = HostGate(*self._settings)
        return gate
