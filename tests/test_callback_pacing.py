"""How the deliverer spares the store and sizes each host's queue (issue 25's cost on the send path):
ends written in batches, and written before a stop; a fast receiver's queue grows with its pace, a
slow one's stays short, an open circuit takes none. Real SQLite store, real receivers over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from gateway.callbacks.deliverer import CallbackDeliverer, Settings
from gateway.callbacks.hosts import DEFER_MS, QUEUE_SECONDS, HostGate, HostGates
from gateway.metrics import Metrics
from gateway.store.callbacks import Finish
from tests.test_callback_delivery import (
    FAST,
    Clock,
    Receiver,
    accepted,
    counted,
    delivering,
    hooked_account,
    listening,
    store,  # noqa: F401 — the fixture
    until,
)


class CountedWrites:
    """The real store, with a count of the deliverer's end writes."""

    def __init__(self, wrapped: Any) -> None:
        self._store, self.writes = wrapped, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def finish_callbacks(self, token: str, finishes: Sequence[Finish], now_ms: int) -> None:
        self.writes += 1
        await self._store.finish_callbacks(token, finishes, now_ms)


async def test_the_ends_of_many_posts_are_written_in_a_few_store_writes(store, aiohttp_server):  # noqa: F811
    receiver, clock = Receiver(), Clock()
    url = await listening(aiohttp_server, receiver)
    account_id = await hooked_account(store, "shop", url)
    await accepted(store, account_id, clock, url, *(f"m{n}" for n in range(60)))
    counting = CountedWrites(store)
    # The clock moves so that events turned away by the host's full queue come due again; the
    # lease outlasts the test, so a POST in flight is never claimed twice.
    async with delivering(
        counting, clock, finish_batch=1000, finish_seconds=0.2, lease_ms=86_400_000
    ) as metrics:
        await until(lambda: counted(metrics, "delivered") == 60, clock, step=0.5)
    assert await store.callback_backlog(clock.ms()) == (0, 0.0)
    assert len(receiver.posts) == 60
    assert counting.writes <= 15  # a write per batch (and before each claim), not one per POST


async def test_a_stopped_deliverer_writes_the_ends_it_holds(store, aiohttp_server):  # noqa: F811
    """Ends wait for their batch; a stop (SIGTERM: the app's cleanup cancels the deliverer) writes
    them first, so a restart does not post those events again."""
    receiver, clock = Receiver(), Clock()
    url = await listening(aiohttp_server, receiver)
    account_id = await hooked_account(store, "shop", url)
    await accepted(store, account_id, clock, url, "m1", "m2", "m3")
    deliverer = CallbackDeliverer(
        store,
        store.account_by_key,
        ZoneInfo("UTC"),
        Metrics([]),
        clock=clock,
        settings=Settings(**{**FAST, "poll_seconds": 3600.0, "finish_batch": 1000, "finish_seconds": 3600.0}),
    )
    task = asyncio.create_task(deliverer.run())
    await until(lambda: len(receiver.posts) == 3)
    await asyncio.sleep(0.1)
    assert (await store.callback_backlog(clock.ms()))[0] == 3  # posted, their ends not yet written
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await store.callback_backlog(clock.ms()) == (0, 0.0)


def test_a_fast_hosts_queue_grows_with_its_pace_and_a_slow_ones_stays_short():
    gate = HostGate(per_host=4, failures=5, cooldown=60.0, cap=5000)
    assert gate.room(0.0) == 8  # unseen: as many again as it posts at once
    for _ in range(100):
        gate.posted(0.002)
    assert gate.room(0.0) > 1000  # posts 2,000 a second: 5 s of them may wait
    for _ in range(100):
        gate.posted(3.0)
    assert gate.room(0.0) == 8  # answers in 3 s: 5 s of it is less than the floor
    gate.waiting = 8
    assert gate.room(0.0) == 0 and not gate.admits(0.0)
    assert gate.reopens_ms(1_000) >= 1_000 + int(8 / 4 * 3.0 * 1000) * 0.9  # when its queue drains


def test_an_open_circuit_admits_nothing_until_it_cools_down():
    gate = HostGate(per_host=4, failures=2, cooldown=60.0, cap=5000)
    gate.failed(10.0)
    gate.failed(10.0)
    assert gate.room(11.0) == 0
    assert gate.reopens_ms(11_000) == 70_000
    assert gate.room(70.0) > 0  # half open: one more try


def test_a_turned_away_event_is_due_no_sooner_than_the_floor():
    gate = HostGate(per_host=4, failures=5, cooldown=60.0, cap=5000)
    for _ in range(100):
        gate.posted(0.001)
    assert gate.reopens_ms(5_000) == 5_000 + DEFER_MS
    assert QUEUE_SECONDS * 1000 < 30_000  # a queued event starts well inside its 30 s lease


def test_one_fast_host_takes_at_most_its_share_of_the_deliverers_queue():
    """However fast a receiver, its queue is capped, so another host's events always find room."""
    gates = HostGates(per_host=4, failures=5, cooldown=60.0, cap=256)
    fast = gates["fast.example.com"]
    for _ in range(100):
        fast.posted(0.0001)
    assert fast.room(0.0) == 256
    fast.waiting = 256
    assert fast.room(0.0) == 0
    assert gates.room(0.0) == 8  # a claim still asks for a host not met yet


async def test_an_event_that_waited_too_long_for_its_host_is_handed_back_unposted(store, aiohttp_server):  # noqa: F811
    """One POST at a time to a receiver answering in 0.6 s, a lease that leaves 0.2 s to wait for a
    slot beyond a whole POST (2.2 s lease, 1 s timeout, 1 s margin): the second event is handed
    back, not posted when another worker could already hold it."""
    receiver, clock = Receiver(delay=0.6), Clock()
    url = await listening(aiohttp_server, receiver)
    account_id = await hooked_account(store, "shop", url)
    await accepted(store, account_id, clock, url, "m1", "m2")
    async with delivering(store, clock, per_host=1, lease_ms=2_200) as metrics:
        await until(lambda: counted(metrics, "delivered") == 1)
        await asyncio.sleep(0.8)  # the second would have been posted by now
    assert [message for message, _, _ in receiver.types()] in (["m1"], ["m2"])
    [waiting] = await store.claim_callbacks(clock.ms() + 3_600_000, 1000, 10, "look")
    assert waiting.attempts == 0  # handed back, not tried
