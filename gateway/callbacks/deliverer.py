"""The background task that posts callbacks: claim due events with a lease, POST each, finish it.

Every worker of every host runs one; the store's leases make each event claimed by one at a time,
so in the normal path each is POSTed once, and after a crash at most the claimed ones again. A 2xx
is done, a 410 stops the record's events to that URL, anything else (a timeout, a refused
connection) is tried again at ``schedule.next_attempt_ms`` until the event is 24 h old, then it is dead.
Receivers are kept apart by ``hosts``; the send path never waits on any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from gateway.callbacks import signing
from gateway.callbacks.events import body_of
from gateway.callbacks.hosts import HostGate, HostGates, host_of
from gateway.callbacks.poster import Poster
from gateway.callbacks.schedule import next_attempt_ms
from gateway.callbacks.urls import CallbackUrlRefused, check_callback_url
from gateway.clock import Clock, system_clock
from gateway.log_throttle import LogThrottle
from gateway.metrics import Metrics
from gateway.store.base import Account, StoreUnavailable
from gateway.store.callbacks import CallbackOutbox, Finish, OutboxEvent

__all__ = ["CallbackDeliverer", "Settings"]

#: What a claimed event's lease must still have left, beyond a whole POST, for it to be posted.
LEASE_MARGIN_SECONDS = 1.0

log = logging.getLogger("smsedge.callbacks")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How the deliverer paces itself (tests shorten these)."""

    timeout: float = 5.0  # a POST's, whole
    lease_ms: int = 30_000  # a claim's hold on its events
    max_queue: int = 1024  # events in memory at once
    per_host: int = 16  # POSTs to one host at once (hosts.py sizes its queue)
    circuit_failures: int = 5
    circuit_cooldown: float = 60.0
    poll_seconds: float = 1.0  # a round when idle, and the backlog's gauges
    finish_batch: int = 64  # ends written at once, or every finish_seconds
    finish_seconds: float = 0.05
    claim_gap: float = 0.02  # rounds at most this often while more are due
    prune_seconds: float = 3600.0
    schedule: Callable[[int, int, int, random.Random], int | None] = next_attempt_ms


class CallbackDeliverer:
    def __init__(
        self,
        outbox: CallbackOutbox,
        account: Callable[[str], Awaitable[Account | None]],
        zone: ZoneInfo,
        metrics: Metrics,
        *,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        settings: Settings | None = None,
    ) -> None:
        self._outbox, self._account, self._zone, self._metrics = outbox, account, zone, metrics
        self._clock, self._rng = clock, rng or random.Random()  # noqa: S311 — jitter, not secrets
        self._settings = settings = settings or Settings()
        self._gates = HostGates(
            settings.per_host, settings.circuit_failures, settings.circuit_cooldown, settings.max_queue // 4
        )
        self._token = uuid.uuid4().hex  # this worker's leases
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._more = False  # the last claim took all it asked for: more may be due
        self._next_backlog = self._next_prune = 0.0
        self._finishes: list[Finish] = []  # ends not yet written: one write per batch
        self._flush = asyncio.Event()
        self._trouble = LogThrottle(60.0)
        self._poster: Poster | None = None

    async def run(self) -> None:
        """Deliver until cancelled; what is in flight then is left to its lease, what has ended is
        written first."""
        async with Poster(self._settings.timeout) as poster:
            self._poster = poster
            writing = asyncio.create_task(self._write_finishes())
            try:
                await self._claim_rounds()
            finally:
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)
                await self._write_batch()

    async def _claim_rounds(self) -> None:
        """A round when a claim took all it asked for and a POST ends (at most every ``claim_gap``),
        else every ``poll_seconds``. No store read or write per event: the send path shares the
        writer."""
        while True:
            try:
                await self._round()
            except Exception:  # a bug must not end delivery for good
                log.exception("callbacks: a delivery round failed")
            await _wait(self._wake, self._settings.poll_seconds)
            await asyncio.sleep(self._settings.claim_gap)  # a claim gathers what came meanwhile

    async def _round(self) -> None:
        """Report the backlog (once a poll), claim what the queue and the hosts have room for,
        start each event's POST."""
        await self._write_batch()  # ends first: a record's next event becomes claimable
        now = self._clock()
        now_ms = int(now * 1000)
        try:
            if now >= self._next_backlog:
                self._next_backlog = now + self._settings.poll_seconds
                self._metrics.callback_backlog(*await self._outbox.callback_backlog(now_ms))
            if now >= self._next_prune:  # ended events a week old; again soon while there are more
                pruned = await self._outbox.prune_callbacks(now_ms)
                self._next_prune = now + (
                    self._settings.poll_seconds if pruned else self._settings.prune_seconds
                )
            room = min(self._settings.max_queue - len(self._tasks), self._gates.room(now))
            if room <= 0:
                return
            claimed = await self._outbox.claim_callbacks(now_ms, self._settings.lease_ms, room, self._token)
        except StoreUnavailable as exc:
            if (left_out := self._trouble.due()) is not None:
                log.warning("callbacks: store unavailable (%s); %d more like it", exc, left_out)
            return
        self._more = len(claimed) == room
        for event in claimed:
            gate = self._gates[host_of(event.url)]
            if gate.admits(now):
                gate.waiting += 1
                self._start(self._deliver(event, gate, time.monotonic()))
            else:  # handed back unposted: the host's queue is full, or its circuit open
                self._finish(event, "defer", gate.reopens_ms(now_ms), None)

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._more:  # more were due: claim again soon (at most every claim_gap)
            self._more = False
            self._wake.set()
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("callbacks: delivering an event failed: %r", exc)

    async def _deliver(self, event: OutboxEvent, gate: HostGate, claimed: float) -> None:
        """POST once the host has a slot, unless its circuit opened meanwhile or the wait left too
        little of the lease for a whole POST (another worker could claim it mid-POST): then the
        event is handed back unposted."""
        settings = self._settings
        try:
            async with gate.slots:
                now = self._clock()
                waited = time.monotonic() - claimed  # real time, whatever clock the events keep
                late = waited > settings.lease_ms / 1000 - settings.timeout - LEASE_MARGIN_SECONDS
                if gate.is_open(now) or late:
                    self._finish(event, "defer", gate.reopens_ms(int(now * 1000)), None)
                else:
                    await self._post_and_finish(event, gate)
        finally:
            gate.waiting -= 1

    async def _post_and_finish(self, event: OutboxEvent, gate: HostGate) -> None:
        account = await self._account(event.api_key)
        if account is None or account.callback_secret is None:
            self._failed(event, "the account has no callback secret: set one to have events signed")
            return
        try:
            check_callback_url(event.url, account.callback_prefixes)
        except CallbackUrlRefused:
            self._finish(
                event, "stopped", None, "the URL is no longer inside the account's callback_prefixes"
            )
            self._metrics.callback_outcome("refused")
            return
        started = time.monotonic()  # real time, whatever clock the events keep
        status, error = await self._post(event, account)
        gate.posted(time.monotonic() - started)
        if status is not None and 200 <= status < 300:
            gate.succeeded()
            self._finish(event, "delivered", None, None)
            self._metrics.callback_outcome("delivered")
        elif status == 410:
            gate.succeeded()
            self._finish(event, "stopped", None, "HTTP 410")
            self._metrics.callback_outcome("refused")
        else:
            gate.failed(self._clock())
            self._failed(event, error or f"HTTP {status}")

    async def _post(self, event: OutboxEvent, account: Account) -> tuple[int | None, str | None]:
        """The receiver's status, or None and what went wrong (never a secret, never the body)."""
        assert self._poster is not None and account.callback_secret is not None
        body = body_of(event, account.name, self._zone)
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            signing.HEADER_TIMESTAMP: str(timestamp),
            signing.HEADER_SIGNATURE: signing.sign(account.callback_secret, timestamp, body),
            signing.HEADER_EVENT_ID: event.event_id,
        }
        return await self._poster.post(event.url, body, headers)

    def _failed(self, event: OutboxEvent, error: str) -> None:
        """Try again on the schedule, or give up: 24 h after the event was written it is dead."""
        now_ms = int(self._clock() * 1000)
        next_ms = self._settings.schedule(event.created_ms, event.attempts + 1, now_ms, self._rng)
        if next_ms is None:
            self._finish(event, "dead", None, error)
            self._metrics.callback_outcome("dead")
            log.warning(
                "callback event %s to %s is dead after %d attempts: %s",
                event.event_id,
                host_of(event.url),
                event.attempts + 1,
                error,
            )
        else:
            self._finish(event, "retry", next_ms, error)
            self._metrics.callback_outcome("retried")

    def _finish(self, event: OutboxEvent, outcome: str, next_ms: int | None, error: str | None) -> None:
        """Queue the event's end for the next batch write; until then its lease keeps it ours."""
        self._finishes.append((event.event_id, outcome, next_ms, error))
        if len(self._finishes) >= self._settings.finish_batch:
            self._flush.set()

    async def _write_finishes(self) -> None:
        while True:
            await _wait(self._flush, self._settings.finish_seconds)
            await self._write_batch()

    async def _write_batch(self) -> None:
        """Write the queued ends in one store write. Not written (the store is down): the leases
        run out and those events are posted again, as after a crash."""
        batch, self._finishes = self._finishes, []
        if not batch:
            return
        try:
            await self._outbox.finish_callbacks(self._token, batch, int(self._clock() * 1000))
        except StoreUnavailable as exc:
            if (left_out := self._trouble.due()) is not None:
                log.warning("callbacks: %d ends not written (%s); %d more like it", len(batch), exc, left_out)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` pass; then clear it."""
    # asyncio.timeout, not wait_for: wait_for swallows a cancellation that comes as the wake-up
    # does (Python 3.11), and the loop would never end.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    event.clear()
