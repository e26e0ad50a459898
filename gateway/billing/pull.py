"""The status pull: ask the carrier about records whose delivery receipt never came.

A record waiting for its receipt is due ``receipts.pull_after`` after it was sent; then it is asked
about in batches of the carrier's ``pull_batch``, and, while unanswered, again later (each wait half
its age, at most 6 hours, so a record is asked a handful of times, not every round). After
``receipts.give_up_after`` it is given up on: marked ``no_receipt`` (or refunded, with
``receipts.refund_unknown``). Every worker runs a puller; a lease per carrier lets one of a fleet
do a carrier's round at a time.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from gateway.carriers.base import Carrier, CarrierError, StatusQuery
from gateway.carriers.receipts import apply_carrier_receipts
from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.runtime import Runtime, RuntimeSlot
from gateway.store.base import Store, StoreUnavailable
from gateway.store.billing import Awaiting

__all__ = ["ROUND_SECONDS", "StatusPuller"]

log = logging.getLogger("smsedge.billing")

ROUND_SECONDS = 30.0  # how often each worker looks for due records
MAX_WAIT_MS = 6 * 3600 * 1000  # the longest wait between two asks about one record
BATCHES_A_ROUND = 20  # a round asks at most this many batches of each carrier, then yields the lease
GIVE_UP_A_ROUND = 5_000  # records given up on per carrier and round (one transaction each)


class StatusPuller:
    def __init__(self, store: Store, runtime: RuntimeSlot, metrics: Metrics, clock: Clock) -> None:
        self._store = store
        self._runtime = runtime
        self._metrics = metrics
        self._clock = clock
        self._owner = secrets.token_hex(8)  # this worker, as the leases know it

    async def run(self, every: float = ROUND_SECONDS) -> None:
        while True:
            try:
                await self.round()
            except StoreUnavailable as exc:
                log.warning("status pull skipped a round: store unavailable (%s)", exc)
            except Exception:  # a plugin's surprise must not end the pull for good
                log.exception("status pull round failed")
            await asyncio.sleep(every)

    async def round(self) -> None:
        """One look at every carrier that takes receipts: give up on the oldest, ask about the due."""
        runtime = self._runtime.current
        for name, backend in runtime.config.providers.backends.items():
            if not backend.receipts:
                continue
            lease_ms = int(ROUND_SECONDS * 2 * 1000)
            if not await self._store.take_lease(f"status-pull:{name}", self._owner, self._now_ms(), lease_ms):
                continue
            await self._give_up(runtime, name)
            carrier = runtime.carriers[name]
            for _ in range(BATCHES_A_ROUND):
                due = await self._store.awaiting_receipts(name, self._now_ms(), carrier.pull_batch)
                if not due:
                    break
                await self._ask(runtime, name, carrier, due)

    async def _give_up(self, runtime: Runtime, name: str) -> None:
        receipts = runtime.config.receipts
        now_ms = self._now_ms()
        given = await self._store.give_up_receipts(
            name, now_ms - receipts.give_up_after * 1000, receipts.refund_unknown, now_ms, GIVE_UP_A_ROUND
        )
        if given:
            self._metrics.status_pulls.labels(name, "given_up").inc(given)
            log.info(
                "%s: gave up on the receipts of %d records (refunded: %s)",
                name,
                given,
                receipts.refund_unknown,
            )

    async def _ask(self, runtime: Runtime, name: str, carrier: Carrier[Any], due: list[Awaiting]) -> None:
        sealer = runtime.sender.billing.sealer
        opened = [
            (record, sealer.open(record.sealed_phone, record.message_id) if sealer else None)
            for record in due
        ]
        queries = [StatusQuery(r.carrier_id, e164, r.created_ms) for r, e164 in opened if e164 is not None]
        now_ms = self._now_ms()
        try:
            receipts = await carrier.pull_statuses(queries) if queries else []
        except CarrierError as exc:
            log.warning("%s: status query failed: %s", name, exc.code)
            self._metrics.status_pulls.labels(name, "error").inc(len(due))
        else:
            answered = 0
            if receipts:
                answered = await apply_carrier_receipts(
                    self._store, runtime.sender, self._metrics, name, receipts, now_ms
                )
            self._metrics.status_pulls.labels(name, "answered").inc(answered)
            self._metrics.status_pulls.labels(name, "unanswered").inc(len(due) - answered)
        # Unanswered (and unopenable) records wait half their age before the next ask, at least
        # the round's own wait: asked a handful of times until give_up_after, not every round.
        await self._store.pulled(name, due, now_ms + _wait_ms(due, now_ms))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _wait_ms(due: Sequence[Awaiting], now_ms: int) -> int:
    youngest = max(record.created_ms for record in due)
    return int(min(MAX_WAIT_MS, max(ROUND_SECONDS * 1000, (now_ms - youngest) / 2)))
