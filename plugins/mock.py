"""A carrier that sends nothing: the embedded default, for development and tests.

It behaves like a carrier on the wire would: it takes time (``latency_ms``) and refuses a share
of the numbers (``fail_rate``), so the gateway's slow and failing paths can be exercised without
an upstream.
"""

from __future__ import annotations

import asyncio
import random
from typing import Annotated

from msgspec import Meta

from gateway.carriers.base import Carrier, FailureKind, Outcome, SendBatch
from gateway.config.model import Settings
from gateway.ids import new_hex_id

__all__ = ["MockCarrier", "MockOptions"]


class MockOptions(Settings, frozen=True, kw_only=True):
    latency_ms: Annotated[int, Meta(ge=0, le=600_000)] = 0  # simulated carrier latency
    fail_rate: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.0  # the share of numbers it refuses


class MockCarrier(Carrier[MockOptions]):
    name = "mock"
    max_batch = 1000
    Options = MockOptions

    async def send(self, batch: SendBatch) -> list[Outcome]:
        if self.options.latency_ms:
            await asyncio.sleep(self.options.latency_ms / 1000)
        return [self._outcome(recipient.e164) for recipient in batch.recipients]

    def _outcome(self, e164: str) -> Outcome:
        # Not a secret: the mock only needs a share of refusals, not unpredictability.
        if random.random() < self.options.fail_rate:  # noqa: S311
            return Outcome(
                e164,
                False,
                kind=FailureKind.PERMANENT,
                code="MOCK_REFUSED",
                message="mock carrier refused the message",
            )
        return Outcome(e164, True, carrier_id=f"mock-{new_hex_id()}")
