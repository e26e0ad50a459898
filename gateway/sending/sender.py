"""Sending one template to some numbers: choose the carrier, charge, record, call, settle.

The order is the durability contract: the price is reserved and every record written ``pending``
in one transaction *before* the carrier is called, so a crash can lose neither money nor a record;
the final statuses and refunds are applied in one transaction after.
"""

from __future__ import annotations

import logging
import secrets
from zoneinfo import ZoneInfo

from gateway.carriers.base import Recipient
from gateway.clock import Clock, LocalDays
from gateway.config.model import BackendConfig, GatewayConfig
from gateway.errors import ApiError, insufficient_balance, store_unavailable
from gateway.ids import derived_uuid, new_hex_id, new_uuid
from gateway.metrics import Metrics
from gateway.phones import Phone, scrub
from gateway.ratelimit.guard import GuardedLimiter
from gateway.sending.dispatch import Dispatcher
from gateway.sending.model import Delivery, Final, SendInput
from gateway.sending.routing import Routing
from gateway.sending.windows import PhoneWindows
from gateway.store.base import Account, NewRecord, Settlement, Store, StoreUnavailable

__all__ = ["Sender", "build_sender"]

log = logging.getLogger("smsedge.sending")
# Without a configured key the number hash only has to agree within this process (memory limiter):
# one per process, so a reload keeps finding the same numbers' windows and records.
_PROCESS_SECRET = secrets.token_hex(32)


class Sender:
    def __init__(
        self,
        routing: Routing,
        windows: PhoneWindows,
        dispatcher: Dispatcher,
        store: Store,
        clock: Clock,
        zone: ZoneInfo,
    ) -> None:
        self._routing = routing
        self._windows = windows
        self._dispatcher = dispatcher
        self._store = store
        self._clock = clock
        self._day_of = LocalDays(zone)  # the gateway's time zone: which day a send counts for

    def number_key(self, e164: str) -> str:
        """The keyed hash a number is known by in limits and records (never the number itself)."""
        return self._windows.key(e164)

    async def send(self, account: Account, request: SendInput) -> list[Delivery]:
        """Send to every number whose windows allow it; the others fail without cost or record."""
        backend = self._routing.backend_for(account, request.provider)
        self._routing.check_template(request)
        hit_id = new_hex_id()
        keys = self._windows.keys(request.phones)
        throttled = await self._windows.refused(request.phones, keys, hit_id)
        sendable = [
            (phone, key) for phone, key in zip(request.phones, keys, strict=True)
            if phone.e164 not in throttled
        ]
        try:
            sent = await self._send_numbers(account, backend, request, sendable) if sendable else {}
        except ApiError:
            # Refused before any carrier call (balance, store): the windows must not count it.
            await self._windows.release([key for _, key in sendable], hit_id)
            raise
        return [
            sent.get(phone.e164) or Delivery(phone, None, backend.name, throttled[phone.e164])
            for phone in request.phones
        ]

    async def _send_numbers(
        self,
        account: Account,
        backend: BackendConfig,
        request: SendInput,
        numbers: list[tuple[Phone, str]],
    ) -> dict[str, Delivery]:
        """Reserve and record every number, call the carriers, settle; ``numbers`` are (phone, key)."""
        chain = self._routing.chain(account, backend)
        # Reserve what the dearest carrier of the chain would cost; settling refunds the difference.
        reserve = max(candidate.price_milli for candidate in chain)
        records = [
            NewRecord(message_id, phone.masked, request.template_id, backend.name, reserve, key)
            for (phone, key), message_id in zip(numbers, self._message_ids(request, numbers), strict=True)
        ]
        try:
            reserved = await self._store.reserve(account.id, records, self._now_ms())
        except StoreUnavailable as exc:
            log.warning("store unavailable, nothing sent: %s", exc)
            raise store_unavailable() from None
        if not reserved:
            raise insufficient_balance()
        recipients = [
            Recipient(phone.e164, record.message_id)
            for (phone, _), record in zip(numbers, records, strict=True)
        ]
        finals = await self._dispatcher.deliver(chain, request, recipients)
        await self._settle(account, records, finals)
        return {
            phone.e164: Delivery(
                phone, record.message_id, final.backend.name, final.outcome, final.backend.receipts
            )
            for (phone, _), record, final in zip(numbers, records, finals, strict=True)
        }

    @staticmethod
    def _message_ids(request: SendInput, numbers: list[tuple[Phone, str]]) -> list[str]:
        if request.id_seed is None:
            return [new_uuid() for _ in numbers]
        # By the place in the request, not among the numbers sent: a retry derives the same.
        place = {phone.e164: index for index, phone in enumerate(request.phones)}
        return [derived_uuid(request.id_seed, place[phone.e164]) for phone, _ in numbers]

    async def _settle(self, account: Account, records: list[NewRecord], finals: list[Final]) -> None:
        results = [self._settlement(record, final) for record, final in zip(records, finals, strict=True)]
        now = self._clock()
        try:
            await self._store.settle(
                account.id, results, int(now * 1000), self._day_of(now)
            )
        except StoreUnavailable:
            # The carrier has already been called: the records stay pending (the truth the store
            # holds) and the caller still learns what happened to each number.
            log.exception("store unavailable while settling %d records", len(results))

    @staticmethod
    def _settlement(record: NewRecord, final: Final) -> Settlement:
        outcome, backend = final.outcome, final.backend
        if not outcome.accepted:
            error = scrub(f"{outcome.code}: {outcome.message}")[:500]
            return Settlement(record.message_id, "failed", backend.name, 0, outcome.carrier_id, error)
        # With delivery receipts the carrier's acceptance is not yet delivery: wait for the receipt.
        status = "pending" if backend.receipts else "success"
        return Settlement(
            record.message_id, status, backend.name, backend.price_milli, outcome.carrier_id
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def build_sender(
    config: GatewayConfig,
    store: Store,
    limiter: GuardedLimiter,
    dispatcher: Dispatcher,
    clock: Clock,
    metrics: Metrics,
) -> Sender:
    """The sender of a configured gateway: each part gets only its slice of ``config``."""
    secret = (config.server.secret_key or _PROCESS_SECRET).encode()
    windows = PhoneWindows(limiter, config.ratelimit.phone, secret, metrics)
    routing = Routing(config.providers, config.templates)
    return Sender(routing, windows, dispatcher, store, clock, config.server.zone)
