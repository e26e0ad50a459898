"""What a record is charged once its carrier answered: segments × the carrier's price a segment.

The carrier's own count wins where it gives one (Tencent's ``Fee`` in the send's answer; Aliyun's
``sms_size`` comes with the receipt and re-prices the record in the store); else the gateway's count
of the template's text. A carrier count that differs from a text's count means the text in the
config is out of date: logged and counted (``smsedge_segment_mismatch_total``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gateway.billing.counting import SendSegments, is_international
from gateway.billing.sealing import Sealer
from gateway.config.model import GatewayConfig, TemplateConfig
from gateway.metrics import Metrics
from gateway.phones import Phone, scrub
from gateway.sending.model import CarrierVerdict
from gateway.store.records import NewRecord, Settlement

__all__ = ["Billing", "note_mismatch"]

log = logging.getLogger("smsedge.billing")


def note_mismatch(metrics: Metrics, provider: str, template_id: str | None, ours: int, theirs: int) -> None:
    """A carrier billed another count than the gateway's: the template's text in the config needs a
    look (or is missing). ``template_id`` as records keep it (masked where it holds a number)."""
    metrics.segment_mismatches.labels(provider).inc()
    log.warning(
        "%s billed %d segments where the gateway counted %d%s: is the template's text in the config current?",
        provider,
        theirs,
        ours,
        f" (template {template_id})" if template_id else "",
    )


@dataclass(frozen=True, slots=True)
class Billing:
    templates: Mapping[str, TemplateConfig]
    zone: ZoneInfo
    metrics: Metrics
    sealer: Sealer | None  # None without ``server.secret_key`` (then no backend takes receipts)
    pull_after_ms: int

    @classmethod
    def of(cls, config: GatewayConfig, metrics: Metrics) -> Billing:
        secret = config.server.secret_key
        return cls(
            config.templates,
            config.server.zone,
            metrics,
            Sealer(secret) if secret else None,
            config.receipts.pull_after * 1000,
        )

    def settlement(
        self, record: NewRecord, verdict: CarrierVerdict, segments: SendSegments, phone: Phone, now: float
    ) -> Settlement:
        outcome, backend = verdict.outcome, verdict.backend
        counted = (
            record.segments
            if backend.name == record.provider
            else segments.of(backend.name, is_international(phone))
        )
        if not outcome.accepted:
            error = scrub(f"{outcome.code}: {outcome.message}")[:500]
            return Settlement(
                record.message_id, "failed", backend.name, 0, outcome.carrier_id, error, counted
            )
        billed = outcome.segments or counted
        if billed != counted:
            note_mismatch(self.metrics, backend.name, record.template_id, counted, billed)
        price = billed * backend.price_milli
        if not backend.receipts:
            return Settlement(
                record.message_id,
                "success",
                backend.name,
                price,
                outcome.carrier_id,
                None,
                billed,
                carrier_counted=outcome.segments is not None,
            )
        # The carrier's acceptance is not yet delivery: the record waits for its receipt, and keeps
        # its number sealed for a status pull if the receipt is late.
        sealed = None if self.sealer is None else self.sealer.seal(phone.e164, record.message_id)
        return Settlement(
            record.message_id,
            "pending",
            backend.name,
            price,
            outcome.carrier_id,
            None,
            billed,
            sealed,
            int(now * 1000) + self.pull_after_ms,
            outcome.segments is not None,
        )
