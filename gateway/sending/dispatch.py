"""Getting numbers to a carrier: batches, timeouts, retries, failover and circuit breakers.

For each backend in the chain (the chosen one, then ``providers.failover``): numbers go out in as
few calls as its ``max_batch`` allows, concurrently; numbers refused as *retryable* are tried again
(``retries`` times, jittered backoff) and then handed to the next backend, with that backend's
template id. Caller faults, per-number rate limits and permanent refusals are final. A timeout leaves
the first carrier's outcome unknown, so it is retried or failed over only where the backend says
``failover_on_timeout: true`` (off by default: a duplicate SMS is worse than a failed one).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from gateway.carriers.base import Carrier, CarrierError, FailureKind, Outcome, Recipient, SendBatch
from gateway.config.model import BackendConfig, TemplateConfig
from gateway.metrics import Metrics
from gateway.sending.circuit import CircuitBreaker
from gateway.sending.model import CarrierVerdict, SendInput, template_of
from gateway.status.view import CarrierCall, StatusView

__all__ = ["Dispatcher"]

log = logging.getLogger("smsedge.delivery")
_BACKOFF_BASE, _BACKOFF_CAP = 0.1, 2.0
_CARRIER_TROUBLE = frozenset({FailureKind.RETRYABLE, FailureKind.TIMEOUT})


def _may_try_again(outcome: Outcome, backend: BackendConfig) -> bool:
    if outcome.kind is FailureKind.RETRYABLE:
        return True
    return outcome.kind is FailureKind.TIMEOUT and backend.failover_on_timeout


class Dispatcher:
    def __init__(
        self,
        backends: Mapping[str, BackendConfig],
        templates: Mapping[str, TemplateConfig],
        carriers: Mapping[str, Carrier[Any]],
        metrics: Metrics,
        status: StatusView,
    ) -> None:
        self._templates = templates
        self._carriers = carriers
        self._metrics = metrics
        self._status = status  # told what each delivery did, for /status
        #: A circuit breaker for each configured backend (the status page shows their state).
        self.breakers = {
            name: CircuitBreaker(
                backend.circuit_failures, backend.circuit_cooldown, metrics.circuit_open.labels(name)
            )
            for name, backend in backends.items()
        }

    async def deliver(
        self,
        chain: Sequence[BackendConfig],
        request: SendInput,
        recipients: list[Recipient],
        rules: list[str],
    ) -> list[CarrierVerdict]:
        """Each recipient's final answer, in order; each is counted for the backend that gave it.

        ``rules``: the routing rule that chose ``chain[0]`` for each recipient, for the status view."""
        verdicts: list[CarrierVerdict] = []
        waiting = list(range(len(recipients)))  # places in ``recipients`` still to be taken
        calls: list[CarrierCall] = []
        for backend in chain:
            outcomes = await self._with_retries(backend, request, [recipients[i] for i in waiting], calls)
            if not verdicts:
                verdicts = [CarrierVerdict(outcome, backend) for outcome in outcomes]
            else:
                for place, outcome in zip(waiting, outcomes, strict=True):
                    verdicts[place] = CarrierVerdict(outcome, backend)
            waiting = [
                place
                for place, outcome in zip(waiting, outcomes, strict=True)
                if _may_try_again(outcome, backend)
            ]
            if not waiting:
                break
            if backend is not chain[-1]:
                log.warning("failing over %d numbers from %s", len(waiting), backend.name)
        self._count(chain, verdicts)
        self._status.delivered(chain[0].name, rules, calls)
        return verdicts

    def _count(self, chain: Sequence[BackendConfig], verdicts: list[CarrierVerdict]) -> None:
        """Messages by final answer, each counted for the backend that gave it."""
        if len(chain) == 1 or all(verdict.backend is chain[0] for verdict in verdicts):  # the usual case
            chain = chain[:1]
        for candidate in chain:
            taken = [verdict.outcome.accepted for verdict in verdicts if verdict.backend is candidate]
            self._metrics.observe_messages(candidate.name, sum(taken), len(taken) - sum(taken))

    async def _with_retries(
        self,
        backend: BackendConfig,
        request: SendInput,
        recipients: list[Recipient],
        calls: list[CarrierCall],
    ) -> list[Outcome]:
        template = template_of(self._templates, request.template_id)
        batch = SendBatch(
            template_id=template.ids.get(backend.name, request.template_id),
            params=request.params,
            param_order=template.params,
            recipients=recipients,
        )
        outcomes = await self._attempt(backend, batch, calls)
        for attempt in range(backend.retries):
            again = [place for place, outcome in enumerate(outcomes) if _may_try_again(outcome, backend)]
            if not again or self.breakers[backend.name].is_open:
                break
            # Full jitter, so a fleet retrying at once does not hit the carrier in step.
            await asyncio.sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)))  # noqa: S311
            numbers = [recipients[place] for place in again]
            retried = await self._attempt(backend, msgspec.structs.replace(batch, recipients=numbers), calls)
            for place, outcome in zip(again, retried, strict=True):
                outcomes[place] = outcome
        return outcomes

    async def _attempt(
        self, backend: BackendConfig, batch: SendBatch, calls: list[CarrierCall]
    ) -> list[Outcome]:
        """One round: the batch's numbers in as few calls as the carrier allows, all at once; each
        call made is added to ``calls``."""
        carrier = self._carriers[backend.name]
        recipients, size = batch.recipients, carrier.max_batch
        if len(recipients) <= size:  # the usual case: no task to make and schedule for one call
            results = [await self._call(carrier, backend, batch, calls)]
        else:
            batches = [
                msgspec.structs.replace(batch, recipients=recipients[start : start + size])
                for start in range(0, len(recipients), size)
            ]
            results = await asyncio.gather(*(self._call(carrier, backend, part, calls) for part in batches))
        if len(results[0]) == len(recipients) == 1 and results[0][0].e164 == recipients[0].e164:
            return results[0]  # one number, answered: nothing to match up
        by_number = {outcome.e164: outcome for result in results for outcome in result}
        return [self._outcome_for(by_number, r.e164) for r in recipients]

    @staticmethod
    def _outcome_for(by_number: Mapping[str, Outcome], e164: str) -> Outcome:
        # A carrier reply that skips a number tells us nothing about it: never claim it was sent.
        return by_number.get(e164) or Outcome(
            e164,
            False,
            kind=FailureKind.PERMANENT,
            code="NO_RESULT",
            message="carrier returned no result for this number",
        )

    def _observe(self, calls: list[CarrierCall], provider: str, outcome: str, seconds: float) -> None:
        self._metrics.observe_provider_call(provider, outcome, seconds)
        calls.append((provider, outcome, seconds))

    async def _call(
        self, carrier: Carrier[Any], backend: BackendConfig, batch: SendBatch, calls: list[CarrierCall]
    ) -> list[Outcome]:
        breaker = self.breakers[backend.name]
        if not breaker.allow():
            return CarrierError(
                FailureKind.RETRYABLE, "CIRCUIT_OPEN", f"{backend.name} is failing: circuit open"
            ).outcomes(batch)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(backend.timeout):
                outcomes = await carrier.send(batch)
        except TimeoutError:
            error = CarrierError(FailureKind.TIMEOUT, "TIMEOUT", f"no answer in {backend.timeout}s")
        except CarrierError as exc:
            error = exc
        except Exception:
            log.exception("carrier plugin %s failed unexpectedly", backend.plugin)
            error = CarrierError(FailureKind.PERMANENT, "PLUGIN_ERROR", "carrier plugin error")
        else:
            breaker.succeeded()
            # "refused": the carrier answered, but took none of the numbers.
            outcome = "success" if any(o.accepted for o in outcomes) else "refused"
            self._observe(calls, backend.name, outcome, time.perf_counter() - started)
            return outcomes
        if error.kind in _CARRIER_TROUBLE:
            breaker.failed()
        else:
            breaker.succeeded()
        self._observe(calls, backend.name, error.kind.value, time.perf_counter() - started)
        log.warning("carrier %s refused a batch: %s %s", backend.name, error.kind.value, error.code)
        return error.outcomes(batch)
