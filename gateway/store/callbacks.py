"""The callback outbox, as every store keeps it: events waiting to be posted to their URL.

An event is written in the same transaction (SQLite) or script (Redis) as the status change it
reports, so a crash can neither lose one nor invent one; the deliverer (``gateway.callbacks``)
claims due events with a lease and finishes each. ``facts`` is what the record was at that change
(JSON: phone masked, template_id, provider, status, error, price_milli, occurred_ms), so retries
post the same body whatever the record became since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "CALLBACK_STATES",
    "ENDED_KEPT_MS",
    "EVENT_TYPES",
    "FINISHES",
    "CallbackOutbox",
    "Finish",
    "OutboxEvent",
    "refuse_unknown_outcomes",
]

#: What an event reports: the carrier took it, or its final word.
EVENT_TYPES = ("accepted", "delivered", "failed", "no_receipt")
#: ``pending`` until posted (or given up on): ``delivered`` (a 2xx), ``stopped`` (410), ``dead``.
CALLBACK_STATES = ("pending", "delivered", "stopped", "dead")
#: How the deliverer may finish a claimed event; ``defer`` hands it back unposted, due at
#: ``next_ms``, without counting an attempt (its host's queue is full or its circuit open).
FINISHES = ("delivered", "retry", "stopped", "dead", "defer")
#: How long a delivered or stopped event is kept (to look into) before the store drops it; dead
#: events stay until replayed.
ENDED_KEPT_MS = 7 * 24 * 3600 * 1000
#: One claimed event's end: its id, one of ``FINISHES``, when it is due again (``retry``/``defer``), why.
Finish = tuple[str, str, "int | None", "str | None"]


def refuse_unknown_outcomes(finishes: Sequence[Finish]) -> None:
    """Every store checks a batch of ends before writing any of it: an unknown outcome is a bug."""
    if unknown := {outcome for _, outcome, _, _ in finishes} - set(FINISHES):
        raise ValueError(f"unknown outcome {unknown}")


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    event_id: str  # unique, stable across retries (the receiver's dedup key)
    account_id: int
    message_id: str
    sequence: int  # 1, 2, … per record: events of one record are posted in this order
    type: str
    url: str
    facts: bytes
    attempts: int
    created_ms: int
    next_ms: int
    state: str
    last_error: str | None = None
    api_key: str = ""  # its account's, set by a claim: the deliverer signs with the current secret


class CallbackOutbox(Protocol):
    async def claim_callbacks(self, now_ms: int, lease_ms: int, limit: int, token: str) -> list[OutboxEvent]:
        """Up to ``limit`` due, unleased ``pending`` events, leased to ``token`` until ``now_ms +
        lease_ms``; an event is not claimed while an earlier one of its record is pending."""
        ...

    async def finish_callbacks(self, token: str, finishes: Sequence[Finish], now_ms: int) -> None:
        """Each ``Finish`` for an event ``token`` holds, in one write: ``retry`` and ``defer`` make it due
        at its ``next_ms``; ``stopped`` stops its record's later events too. A lost lease changes
        nothing. One write for many: the deliverer finishes a batch at a time."""
        ...

    async def callback_backlog(self, now_ms: int) -> tuple[int, float]:
        """How many events are pending, and the oldest one's age in seconds (0 when none)."""
        ...

    async def dead_callbacks(
        self, account_id: int, page: int, per_page: int
    ) -> tuple[list[OutboxEvent], int]:
        """The account's dead events, newest first, and how many there are."""
        ...

    async def prune_callbacks(self, now_ms: int) -> int:
        """Drop some delivered and stopped events older than ``ENDED_KEPT_MS``; how many (a store
        that expires them itself drops none here)."""
        ...

    async def replay_callbacks(self, account_id: int, now_ms: int) -> int:
        """Make the account's dead events pending again, due now (a fresh 24 h); how many."""
        ...
