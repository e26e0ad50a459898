"""The contract between the gateway and its carrier plugins.

A plugin subclasses :class:`Carrier`: it declares how to read its own YAML options and sends one
template to many numbers, reporting an :class:`Outcome` per number. The core owns everything
around the call (splitting into batches, timeouts, charging, records), so a new carrier is one
small module that speaks one upstream protocol.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp

from gateway.config.model import BackendConfig
from gateway.config.reader import Reader

__all__ = [
    "Carrier", "CarrierError", "FailureKind", "MalformedReceipts", "Outcome", "Receipt", "Recipient",
    "SendBatch",
]


class FailureKind(enum.Enum):
    """Whose fault a refusal is; it decides the HTTP status and whether to try again."""

    CALLER = "caller"  # bad number, missing template parameter: the request itself is wrong
    RATE_LIMITED = "rate_limited"  # the carrier's per-number frequency limit: the caller's 429
    RETRYABLE = "retryable"  # 5xx, throttling of our account, network trouble: may work later
    PERMANENT = "permanent"  # auth, signature, our carrier balance, template not approved
    TIMEOUT = "timeout"  # no answer in time: the core's verdict, the outcome upstream is unknown


@dataclass(frozen=True, slots=True)
class Recipient:
    e164: str  # the full number: only ever held in memory on the way to the carrier
    message_id: str  # the gateway's id, for carriers that echo a context (SessionContext, OutId)


@dataclass(frozen=True, slots=True)
class SendBatch:
    """One template with its parameters, to up to ``Carrier.max_batch`` recipients."""

    template_id: str  # already mapped to this carrier's id for the template
    params: Mapping[str, str]
    param_order: tuple[str, ...]  # configured order for carriers that take a list of values
    recipients: Sequence[Recipient]

    def ordered_params(self) -> list[str]:
        """Values in the configured order, else in the order the caller wrote them."""
        if self.param_order:
            return [self.params[name] for name in self.param_order if name in self.params]
        return list(self.params.values())


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the carrier said about one number."""

    e164: str
    accepted: bool
    carrier_id: str | None = None
    kind: FailureKind | None = None
    code: str | None = None  # the carrier's own error code, for records and logs
    message: str | None = None  # the carrier's reason, in its own terms
    retry_after: int | None = None  # seconds, when a rate limit says when to try again


@dataclass(frozen=True, slots=True)
class Receipt:
    """One delivery report from a carrier's status push, in the carrier's own terms."""

    carrier_id: str  # the id the send returned (Tencent SerialNo, Aliyun BizId)
    e164: str  # normalised as parse_phone gives it: only held in memory, hashed to match the record
    delivered: bool
    code: str  # the carrier's receipt code (DELIVRD, DELIVERED, UNDELIV, MK:0001, ...)
    description: str = ""
    reported_at: str | None = None  # the carrier's own time text, for logs


class MalformedReceipts(ValueError):
    """A status push the plugin cannot read: the gateway answers 400 and changes nothing."""


class CarrierError(Exception):
    """The whole upstream call failed: every number in it shares this outcome."""

    def __init__(self, kind: FailureKind, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.kind = kind
        self.code = code
        self.message = message

    def outcomes(self, batch: SendBatch) -> list[Outcome]:
        return [
            Outcome(r.e164, False, kind=self.kind, code=self.code, message=self.message)
            for r in batch.recipients
        ]


class Carrier(abc.ABC):
    """Base class of every carrier plugin."""

    #: how many numbers one upstream call may carry; the core splits larger sends
    max_batch: ClassVar[int] = 1

    def __init__(self, backend: BackendConfig, session: aiohttp.ClientSession) -> None:
        self.backend = backend
        self.options = backend.options
        self.session = session

    @classmethod
    @abc.abstractmethod
    def read_options(cls, reader: Reader) -> Any:
        """Validate this plugin's own keys of its backend section (call ``reader.done()``)."""

    @abc.abstractmethod
    async def send(self, batch: SendBatch) -> list[Outcome]:
        """Send one batch; return one Outcome per recipient or raise CarrierError for all."""

    def parse_receipts(self, body: bytes) -> list[Receipt] | None:
        """Read one delivery-receipt push; None means this carrier has no receipts (404).

        Raise :class:`MalformedReceipts` for a body that is not the carrier's report format.
        """
        return None

    def receipt_reply(self) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body the carrier expects once its push is taken."""
        return 200, {"success": True}

    async def close(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Release what the plugin opened itself (the HTTP session belongs to the gateway)."""
