"""Isolation between receivers: a concurrency cap, a bounded queue and a circuit per host.

One slow or dead receiver must not delay another's events: each host gets ``per_host`` POSTs at
once and a queue of what those can post in ``QUEUE_SECONDS`` at its recent POST time (at least
as many again as it posts at once, at most ``cap``: a share of the deliverer's queue, so other
hosts always find room), so no event waits in memory for long, well inside its lease;
events beyond it are handed back to the store unposted, due again when the host's queue should
have drained, at least ``DEFER_MS`` on.
After ``failures`` failed POSTs in a row the host's circuit opens: its events are handed back due
when ``cooldown`` has passed, then one failure more opens it again.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

__all__ = ["DEFER_MS", "HostGate", "HostGates", "host_of"]

#: How soon an event turned away by a full host queue is offered again, at the soonest.
DEFER_MS = 500
#: How long a host's queue may take to post, at its recent pace: a fast receiver's queue is long.
QUEUE_SECONDS = 5.0


def host_of(url: str) -> str:
    return urlsplit(url).netloc.lower()


class HostGate:
    def __init__(self, per_host: int, failures: int, cooldown: float, cap: int) -> None:
        self.slots = asyncio.Semaphore(per_host)
        self.waiting = 0  # events of this host in memory: POSTing or queued for a slot
        self._per_host, self._failures, self._cooldown, self._cap = per_host, failures, cooldown, cap
        self._failed = 0
        self._open_until = 0.0
        self._post_seconds: float | None = None  # a moving average of its POSTs' time, once seen

    def room(self, now: float) -> int:
        """How many more events of this host may be queued now."""
        if self.is_open(now):
            return 0
        pace = QUEUE_SECONDS if self._post_seconds is None else max(self._post_seconds, 1e-3)
        paced = min(int(self._per_host * QUEUE_SECONDS / pace), self._cap)
        return max(0, max(2 * self._per_host, paced) - self.waiting)

    def admits(self, now: float) -> bool:
        return self.room(now) > 0

    def posted(self, seconds: float) -> None:
        if self._post_seconds is None:
            self._post_seconds = seconds
        else:
            self._post_seconds += (seconds - self._post_seconds) / 8

    def is_open(self, now: float) -> bool:
        if self._open_until and now >= self._open_until:  # cooled down: half open
            self._open_until, self._failed = 0.0, self._failures - 1
        return bool(self._open_until)

    def reopens_ms(self, now_ms: int) -> int:
        """When an event this gate turned away is due again: once the circuit closes, or once the
        queue should have drained."""
        drained_ms = int(self.waiting / self._per_host * (self._post_seconds or 0.0) * 1000)
        return max(now_ms + max(DEFER_MS, drained_ms), int(self._open_until * 1000))

    def succeeded(self) -> None:
        self._failed = 0

    def failed(self, now: float) -> None:
        self._failed += 1
        if self._failed >= self._failures:
            self._open_until = now + self._cooldown


class HostGates:
    def __init__(self, per_host: int, failures: int, cooldown: float, cap: int) -> None:
        self._settings = (per_host, failures, cooldown, cap)
        self._gates: dict[str, HostGate] = {}

    def room(self, now: float) -> int:
        """Events a claim may bring in: every known host's room, and a new host's."""
        per_host = self._settings[0]
        return sum(gate.room(now) for gate in self._gates.values()) + 2 * per_host

    def __getitem__(self, host: str) -> HostGate:
        gate = self._gates.get(host)
        if gate is None:
            gate = self._gates[host] = HostGate(*self._settings)
        return gate
