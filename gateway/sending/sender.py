"""Sending one template to some numbers: choose the carrier, charge, record, call, settle.

The order is the durability contract: the price is reserved and every record written ``pending``
in one transaction *before* the carrier is called, so a crash can lose neither money nor a record;
the final statuses and refunds are applied in one transaction after.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping

from gateway.billing.charging import Billing
from gateway.billing.counting import SendSegments, is_international
from gateway.carriers.base import Recipient
from gateway.clock import Clock, LocalDays
from gateway.config.model import GatewayConfig
from gateway.errors import ApiError, insufficient_balance, store_unavailable
from gateway.ids import derived_uuid, new_hex_id, new_uuid
from gateway.metrics import Metrics
from gateway.phones import mask_template_id
from gateway.ratelimit import Tokens
from gateway.ratelimit.guard import GuardedLimiter
from gateway.sending.dispatch import Dispatcher
from gateway.sending.model import CarrierVerdict, Delivery, SendInput, template_of
from gateway.sending.quotas import over_quota
from gateway.sending.routing import Group, Routed, Routing
from gateway.sending.windows import PhoneWindows
from gateway.store.base import Account, Store, StoreUnavailable
from gateway.store.quotas import Period, QuotaExceeded, counted_in
from gateway.store.records import NewRecord

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
        billing: Billing,
    ) -> None:
        self._routing = routing
        self._windows = windows
        self._dispatcher = dispatcher
        self._store = store
        self._clock = clock
        self._billing = billing
        self._day_of = LocalDays(billing.zone)  # the gateway's time zone: which day a send counts for

    @property
    def billing(self) -> Billing:
        """How this sender charges (its templates, sealer and time zone)."""
        return self._billing

    def phone_hash(self, e164: str) -> str:
        """The keyed hash a number is known by in limits and records (never the number itself)."""
        return self._windows.phone_hash(e164)

    async def send(
        self, account: Account, request: SendInput, tokens: Tokens | None = None
    ) -> list[Delivery]:
        """Send to every number whose windows allow it; the others fail without cost or record.

        ``tokens``: what the request costs the account's bucket, decided here with the windows
        (429 ``RATE_LIMITED`` before anything is counted or sent when the bucket is short)."""
        phone_hashes = self._windows.phone_hashes(request.phones)
        groups = self._routing.plan(account, request, phone_hashes)
        self._routing.check_template(request)
        hit_id = new_hex_id()
        throttled = await self._windows.refused(request.phones, phone_hashes, hit_id, tokens)
        planned = {n.phone.e164: group.backend.name for group in groups for n in group.numbers}
        if throttled:
            groups = _without(groups, throttled)
        try:
            sent = await self._send_groups(account, request, groups) if groups else {}
        except ApiError:
            # Refused before any carrier call (balance, store): the windows must not count it.
            await self._windows.release([n.phone_hash for group in groups for n in group.numbers], hit_id)
            raise
        return [
            sent.get(phone.e164) or Delivery(phone, None, planned[phone.e164], throttled[phone.e164])
            for phone in request.phones
        ]

    async def _send_groups(
        self, account: Account, request: SendInput, groups: list[Group]
    ) -> dict[str, Delivery]:
        """Reserve and record every number, call each group's carriers at once, settle."""
        chains = [self._routing.chain(account, group.backend) for group in groups]
        numbers = [number for group in groups for number in group.numbers]
        message_ids = iter(self._message_ids(request, numbers))
        template_id = mask_template_id(request.template_id)  # the carrier gets it as written
        callback_url = request.callback_url or account.callback_url
        segments = SendSegments(template_of(self._billing.templates, request.template_id), request.params)
        records = [
            # Reserve what the dearest carrier of the chain would cost; settling refunds the rest.
            NewRecord(
                next(message_ids),
                n.phone.masked,
                template_id,
                group.backend.name,
                max(segments.of(c.name, abroad) * c.price_milli for c in chain),
                n.phone_hash,
                callback_url,
                segments.of(group.backend.name, abroad),
            )
            for group, chain in zip(groups, chains, strict=True)
            for n in group.numbers
            for abroad in (is_international(n.phone),)
        ]
        now = self._clock()
        counted = counted_in(self._day_of(now))  # for the account's limits (``quotas``)
        try:
            reserved = await self._store.reserve(account.id, records, int(now * 1000), counted)
        except StoreUnavailable as exc:
            log.warning("store unavailable, nothing sent: %s", exc)
            raise store_unavailable() from None
        except QuotaExceeded as exc:
            raise over_quota(exc.period, now, self._billing) from None
        if not reserved:
            raise insufficient_balance()
        recipients = iter(
            Recipient(n.phone.e164, record.message_id) for n, record in zip(numbers, records, strict=True)
        )
        calls = []
        for group, chain in zip(groups, chains, strict=True):
            calls.append(
                self._dispatcher.deliver(
                    chain, request, [next(recipients) for _ in group.numbers], [n.rule for n in group.numbers]
                )
            )
        # One group (the usual case) is awaited as it is: no task to make and schedule.
        results = [await calls[0]] if len(calls) == 1 else await asyncio.gather(*calls)
        verdicts = [verdict for result in results for verdict in result]
        await self._settle(account, records, verdicts, segments, numbers, counted)
        return {
            phone.e164: Delivery(
                phone, record.message_id, verdict.backend.name, verdict.outcome, verdict.backend.receipts
            )
            for (phone, _, _), record, verdict in zip(numbers, records, verdicts, strict=True)
        }

    @staticmethod
    def _message_ids(request: SendInput, numbers: list[Routed]) -> list[str]:
        if request.id_seed is None:
            return [new_uuid() for _ in numbers]
        # By the place in the request, not among the numbers sent: a retry derives the same.
        place = {phone.e164: index for index, phone in enumerate(request.phones)}
        return [derived_uuid(request.id_seed, place[n.phone.e164]) for n in numbers]

    async def _settle(
        self,
        account: Account,
        records: list[NewRecord],
        verdicts: list[CarrierVerdict],
        segments: SendSegments,
        numbers: list[Routed],
        counted: Period,
    ) -> None:
        now = self._clock()
        settle = self._billing.settlement
        results = [
            settle(record, verdict, segments, number.phone, now)
            for record, verdict, number in zip(records, verdicts, numbers, strict=True)
        ]
        try:
            await self._store.settle(account.id, results, int(now * 1000), self._day_of(now), counted)
        except StoreUnavailable:
            # The carrier has already been called: the records stay pending (the truth the store
            # holds) and the caller still learns what happened to each number.
            log.exception("store unavailable while settling %d records", len(results))


def _without(groups: list[Group], refused: Mapping[str, object]) -> list[Group]:
    """The groups less the ``refused`` numbers; a group left empty is dropped."""
    kept = [
        Group(group.backend, [n for n in group.numbers if n.phone.e164 not in refused]) for group in groups
    ]
    return [group for group in kept if group.numbers]


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
    routing = Routing(config.providers, config.templates, dispatcher.breakers)
    return Sender(routing, windows, dispatcher, store, clock, Billing.of(config, metrics))
