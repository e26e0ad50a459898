"""The sending core's own types: what a send asks for, and what became of each number.

``SendInput`` is built by the API's validation, ``CarrierVerdict`` by the dispatcher, ``Delivery`` by the
sender for the handlers; none of them knows HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from gateway.carriers.base import Outcome
from gateway.config.model import BackendConfig, TemplateConfig
from gateway.errors import PHONE_RATE_LIMITED
from gateway.phones import Phone

__all__ = ["NO_TEMPLATE", "OWN_PHONE_LIMIT", "CarrierVerdict", "Delivery", "SendInput", "template_of"]

OWN_PHONE_LIMIT = PHONE_RATE_LIMITED  # the outcome code of a number refused by our own windows
NO_TEMPLATE = TemplateConfig()  # a template_id not in ``templates``: passed through as-is


class SendInput(msgspec.Struct, frozen=True):
    """One template with its parameters, to one or more numbers, through an optional provider."""

    phones: list[Phone]
    template_id: str
    params: dict[str, str]
    provider: str | None  # the provider the caller names; None: the configured default
    #: An idempotent send's claim token: its message ids derive from it (``ids.derived_uuid``, by
    #: the number's place in ``phones``), so a retry after a crash finds its records.
    id_seed: str | None = None
    #: The send's own callback URL, checked against the account's prefixes (None: the account's).
    callback_url: str | None = None


def template_of(templates: Mapping[str, TemplateConfig], template_id: str) -> TemplateConfig:
    """The configured template, or the pass-through one for an id the config does not list."""
    return templates.get(template_id) or NO_TEMPLATE


class Delivery(msgspec.Struct, frozen=True):
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


class CarrierVerdict(msgspec.Struct, frozen=True):
    """The last word on one number after retries and failover, and the backend it is counted for."""

    outcome: Outcome
    backend: BackendConfig
