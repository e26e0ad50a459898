"""Sending one template to some numbers: choose the carrier, charge, record, call, settle.

The order is the durability contract: the price is reserved and every record written ``pending``
in one transaction *before* the carrier is called, so a crash can lose neither money nor a record;
the final statuses and refunds are applied in one transaction after.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from gateway.api.validation import SendInput
from gateway.carriers.base import FailureKind, Outcome, Recipient
from gateway.clock import Clock, local_day
from gateway.config.model import BackendConfig, GatewayConfig
from gateway.errors import ApiError, insufficient_balance, invalid, store_unavailable
from gateway.metrics import Metrics
from gateway.phones import Phone, scrub
from gateway.ratelimit import phone_key
from gateway.ratelimit.guard import GuardedLimiter
from gateway.sending.dispatch import Dispatcher, Final
from gateway.store.base import Account, NewRecord, Settlement, Store, StoreUnavailable

__all__ = ["OWN_PHONE_LIMIT", "Delivery", "Sender"]

log = logging.getLogger("smsedge.sending")
OWN_PHONE_LIMIT = "PHONE_RATE_LIMITED"  # the outcome code of a number refused by our own windows


@dataclass(frozen=True, slots=True)
class Delivery:
    """One number's result, as the handlers report it."""

    phone: Phone
    message_id: str | None  # None when refused before a record was written
    provider: str
    outcome: Outcome
    awaiting_receipt: bool = False  # accepted, but the record waits for the delivery receipt

    @property
    def status(self) -> str:
        """The record's status: what the caller is told it is."""
        if not self.outcome.accepted:
            return "failed"
        return "pending" if self.awaiting_receipt else "success"


class Sender:
    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        dispatcher: Dispatcher,
        clock: Clock,
        limiter: GuardedLimiter,
        metrics: Metrics,
        phone_secret: bytes,
    ) -> None:
        self._config = config
        self._store = store
        self._dispatcher = dispatcher
        self._clock = clock
        self._limiter = limiter
        self._metrics = metrics
        self._phone_secret = phone_secret

    def backend_for(self, account: Account, requested: str | None) -> BackendConfig:
        """The backend a request goes to: the one it names, else the configured default."""
        name = requested or self._config.providers.default
        backend = self._config.providers.backends.get(name)
        if backend is None:
            raise invalid(f"未知的服务商 {name!r}")
        if account.providers and name not in account.providers:
            raise ApiError(403, "PROVIDER_FORBIDDEN", f"权限不足:账户不能使用服务商 {name}")
        return backend

    def check_template(self, request: SendInput) -> None:
        """A template's declared parameters are all required: carriers fill them by position."""
        declared = self._config.template(request.template_id).params
        missing = [name for name in declared if name not in request.params]
        if missing:
            raise invalid(f"模板 {request.template_id} 缺少参数 {', '.join(missing)}")

    async def send(self, account: Account, request: SendInput) -> list[Delivery]:
        """Send to every number whose windows allow it; the others fail without cost or record."""
        backend = self.backend_for(account, request.provider)
        self.check_template(request)
        hit_id = uuid.uuid4().hex
        throttled = await self._throttled(request.phones, hit_id)
        sendable = [phone for phone in request.phones if phone.e164 not in throttled]
        try:
            sent = await self._send_numbers(account, backend, request, sendable) if sendable else {}
        except ApiError:
            # Refused before any carrier call (balance, store): the windows must not count it.
            if self._config.ratelimit.phone:
                await self._limiter.release(self._phone_keys(sendable), hit_id)
            raise
        return [
            sent.get(phone.e164) or Delivery(phone, None, backend.name, throttled[phone.e164])
            for phone in request.phones
        ]

    def number_key(self, e164: str) -> str:
        """The keyed hash a number is known by in limits and records (never the number itself)."""
        return phone_key(self._phone_secret, e164)

    def _phone_keys(self, phones: list[Phone]) -> list[str]:
        return [self.number_key(phone.e164) for phone in phones]

    async def _throttled(self, phones: list[Phone], hit_id: str) -> dict[str, Outcome]:
        """The numbers whose per-number windows are full, with the refusal each one gets."""
        windows = self._config.ratelimit.phone
        if not windows:
            return {}
        decisions = await self._limiter.hit(self._phone_keys(phones), windows, hit_id)
        refused = {
            phone.e164: Outcome(
                phone.e164, False, kind=FailureKind.RATE_LIMITED, code=OWN_PHONE_LIMIT,
                message=f"请 {decision.retry_after} 秒后重试", retry_after=decision.retry_after,
            )
            for phone, decision in zip(phones, decisions, strict=True)
            if not decision.allowed
        }
        if refused:
            self._metrics.ratelimit_rejections.labels("phone").inc(len(refused))
        return refused

    def chain(self, account: Account, first: BackendConfig) -> list[BackendConfig]:
        """The chosen backend, then the failover ones this account may use."""
        backends = self._config.providers.backends
        rest = [
            backends[name] for name in self._config.providers.failover
            if name != first.name and (not account.providers or name in account.providers)
        ]
        return [first, *rest]

    async def _send_numbers(
        self, account: Account, backend: BackendConfig, request: SendInput, phones: list[Phone]
    ) -> dict[str, Delivery]:
        chain = self.chain(account, backend)
        # Reserve what the dearest carrier of the chain would cost; settling refunds the difference.
        reserve = max(candidate.price_milli for candidate in chain)
        keys = self._phone_keys(phones)
        records = [
            NewRecord(str(uuid.uuid4()), phone.masked, request.template_id, backend.name, reserve, key)
            for phone, key in zip(phones, keys, strict=True)
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
            for phone, record in zip(phones, records, strict=True)
        ]
        finals = await self._dispatcher.deliver(chain, request, recipients)
        for candidate in chain:
            taken = [f.outcome.accepted for f in finals if f.backend is candidate]
            self._metrics.observe_messages(candidate.name, sum(taken), len(taken) - sum(taken))
        await self._settle(account, records, finals)
        return {
            phone.e164: Delivery(
                phone, record.message_id, final.backend.name, final.outcome, final.backend.receipts
            )
            for phone, record, final in zip(phones, records, finals, strict=True)
        }

    async def _settle(self, account: Account, records: list[NewRecord], finals: list[Final]) -> None:
        results = [self._settlement(record, final) for record, final in zip(records, finals, strict=True)]
        now = self._clock()
        try:
            await self._store.settle(
                account.id, results, int(now * 1000), local_day(now, self._config.server.zone)
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
