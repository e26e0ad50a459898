"""Test-only carrier plugins, loaded by import path (``plugin: "tests.carriers:RuleCarrier"``).

They stand at the network edge, where a real carrier would be: the gateway's own parts (registry,
config, sender, store) all run for real around them.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import aiohttp
from msgspec import Meta

from gateway.carriers.base import Carrier, CarrierError, FailureKind, Outcome, SendBatch
from gateway.config.fields import Text
from gateway.config.model import BackendConfig, Settings

__all__ = ["RENDEZVOUS_TIMEOUT", "HalfCarrier", "NotACarrier", "RuleCarrier", "RuleOptions"]

#: how long a call waits for its sibling calls before declaring the batch was not concurrent
RENDEZVOUS_TIMEOUT = 3.0


class RuleOptions(Settings, frozen=True, kw_only=True):
    refuse: tuple[Text, ...] = ()  # E.164 numbers this carrier refuses, each in its own words
    # > 0: answer only once this many calls are in flight at the same time
    rendezvous: Annotated[int, Meta(ge=0, le=1000)] = 0
    meet: str = ""  # count the rendezvous with every carrier of the same ``meet`` (across backends)


class _Meeting:
    """Calls in flight together, counted for one carrier or for several that share a ``meet``."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.all_in = asyncio.Event()


_SHARED_MEETINGS: dict[tuple[str, int], _Meeting] = {}  # (meet, id of the event loop)


class RuleCarrier(Carrier[RuleOptions]):
    """Accepts every number but the configured ones, ten per upstream call, and logs each call.

    With ``rendezvous: N`` no call answers until N calls are in flight together, so a gateway
    that sends its batches one after another gets ``NOT_CONCURRENT`` refusals instead of hanging.
    """

    name = "rules"
    max_batch = 10
    Options = RuleOptions

    def __init__(self, backend: BackendConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(backend, session)
        self.calls: list[list[str]] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.down = False  # a test sets it: every call then fails as a carrier outage would
        self._meeting = _Meeting()

    async def send(self, batch: SendBatch) -> list[Outcome]:
        self.calls.append([recipient.e164 for recipient in batch.recipients])
        if self.down:
            raise CarrierError(FailureKind.RETRYABLE, "UPSTREAM_DOWN", "the carrier is down")
        meeting = self._meeting
        if self.options.meet:
            place = self.options.meet, id(asyncio.get_running_loop())
            meeting = _SHARED_MEETINGS.setdefault(place, _Meeting())
        self.in_flight += 1
        meeting.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.options.rendezvous:
                if meeting.in_flight >= self.options.rendezvous:
                    meeting.all_in.set()
                try:
                    async with asyncio.timeout(RENDEZVOUS_TIMEOUT):
                        await meeting.all_in.wait()
                except TimeoutError:
                    raise CarrierError(
                        FailureKind.PERMANENT, "NOT_CONCURRENT", "calls arrived one after another"
                    ) from None
            return [self._outcome(recipient.e164) for recipient in batch.recipients]
        finally:
            self.in_flight -= 1
            meeting.in_flight -= 1

    def _outcome(self, e164: str) -> Outcome:
        if e164 in self.options.refuse:
            # Carriers quote the number back in full: the gateway must mask it.
            return Outcome(
                e164,
                False,
                kind=FailureKind.PERMANENT,
                code="RULE_REFUSED",
                message=f"number {e164} is blocked",
            )
        return Outcome(e164, True, carrier_id=f"rule-{e164[-4:]}")


class NotACarrier:
    """Importable, but not a Carrier: the registry must refuse it."""

    max_batch = 10


class HalfCarrier(Carrier[None]):
    """A plugin left half-written: it has no options and cannot send."""

    name = "half"
