"""The contract between the gateway and its carrier plugins.

A plugin subclasses :class:`Carrier` with its own options type (``Carrier[MyOptions]``), a
``Settings`` Struct declared as the core declares its sections (``gateway.config.model``), and
sends one template to many numbers, reporting an :class:`Outcome` per number. The core owns
everything around the call (splitting into batches, timeouts, charging, records), so a new carrier
is one small package that speaks one upstream protocol; :mod:`gateway.carriers.http` does its
posting, and :class:`ReportFormat` reads a push of delivery reports.
"""

from __future__ import annotations

import abc
import enum
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import aiohttp
import msgspec
import orjson

from gateway.config.model import BackendConfig, Settings
from gateway.phones import InvalidPhone, parse_phone

__all__ = [
    "Carrier",
    "CarrierError",
    "ErrorCodes",
    "FailureKind",
    "MalformedReceipts",
    "OptionsT",
    "Outcome",
    "Receipt",
    "Recipient",
    "ReportFormat",
    "SendBatch",
    "StatusQuery",
    "report_e164",
    "report_text",
    "whole_number",
]

log = logging.getLogger(__name__)

#: A carrier's own options: its ``Options`` Struct, what ``self.options`` holds.
OptionsT = TypeVar("OptionsT")


class FailureKind(enum.Enum):
    """Whose fault a refusal is; it decides the HTTP status and whether to try again."""

    CALLER = "caller"  # bad number, missing template parameter: the request itself is wrong
    RATE_LIMITED = "rate_limited"  # the carrier's per-number frequency limit: the caller's 429
    RETRYABLE = "retryable"  # 5xx, throttling of our account, network trouble: may work later
    PERMANENT = "permanent"  # auth, signature, our carrier balance, template not approved
    TIMEOUT = "timeout"  # no answer in time: the core's verdict, the outcome upstream is unknown


class ErrorCodes(dict[str, FailureKind]):
    """A carrier's error codes, each with whose fault it is: given as one group of codes per kind."""

    def __init__(
        self,
        *,
        caller: Iterable[str] = (),
        rate_limited: Iterable[str] = (),
        retryable: Iterable[str] = (),
        permanent: Iterable[str] = (),
    ) -> None:
        super().__init__(
            (code, kind)
            for codes, kind in (
                (caller, FailureKind.CALLER),
                (rate_limited, FailureKind.RATE_LIMITED),
                (retryable, FailureKind.RETRYABLE),
                (permanent, FailureKind.PERMANENT),
            )
            for code in codes
        )

    def classify(self, code: str) -> FailureKind:
        """Unknown codes are permanent: a retry cannot fix what nobody understood."""
        return self.get(code, FailureKind.PERMANENT)


class Recipient(msgspec.Struct, frozen=True):
    e164: str  # the full number: only ever held in memory on the way to the carrier
    message_id: str  # the gateway's id, for carriers that echo a context (SessionContext, OutId)


class SendBatch(msgspec.Struct, frozen=True):
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


class Outcome(msgspec.Struct, frozen=True):
    """What the carrier said about one number."""

    e164: str
    accepted: bool
    carrier_id: str | None = None
    kind: FailureKind | None = None
    code: str | None = None  # the carrier's own error code, for records and logs
    message: str | None = None  # the carrier's reason, in its own terms
    retry_after: int | None = None  # seconds, when a rate limit says when to try again
    segments: int | None = None  # what the carrier says it billed (Tencent ``Fee``); None: not said


@dataclass(frozen=True, slots=True)
class Receipt:
    """One delivery report from a carrier's status push, in the carrier's own terms."""

    carrier_id: str  # the id the send returned (Tencent SerialNo, Aliyun BizId)
    e164: str  # normalised as parse_phone gives it: only held in memory, hashed to match the record
    delivered: bool
    code: str  # the carrier's receipt code (DELIVRD, DELIVERED, UNDELIV, MK:0001, ...)
    description: str = ""
    reported_at: str | None = None  # the carrier's own time text, for logs
    segments: int | None = None  # what the carrier billed (Aliyun ``sms_size``); None: not said


class StatusQuery(msgspec.Struct, frozen=True):
    """One record whose receipt never came, as a carrier's status query needs it."""

    carrier_id: str  # the id the send returned (Tencent SerialNo, Aliyun BizId)
    e164: str  # unsealed only for the query, never logged
    sent_ms: int  # when the record was written: the query's time range or send date


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


class Carrier(abc.ABC, Generic[OptionsT]):
    """Base class of every carrier plugin, generic over its ``Options``."""

    #: the carrier's name, for logs: the name its entry point registers in ``smsedge.providers``
    name: ClassVar[str]
    #: how many numbers one upstream call may carry; the core splits larger sends
    max_batch: ClassVar[int] = 1
    #: its own keys of a backend section, declared as the core's sections are (types, defaults,
    #: Meta bounds; ``Secret`` for a credential); the core reads the shared ones. None by default.
    Options: ClassVar[type[Settings]] = Settings

    options: OptionsT

    def __init__(self, backend: BackendConfig, session: aiohttp.ClientSession) -> None:
        self.backend = backend
        self.options = backend.options  # this backend's Options, as read from its section
        self.session = session

    @abc.abstractmethod
    async def send(self, batch: SendBatch) -> list[Outcome]:
        """Send one batch; return one Outcome per recipient or raise CarrierError for all."""

    def parse_receipts(self, body: bytes) -> list[Receipt] | None:
        """Read one delivery-receipt push; None means this carrier has no receipts (404).

        Raise :class:`MalformedReceipts` for a body that is not the carrier's report format.
        """
        return None

    async def pull_statuses(self, queries: Sequence[StatusQuery]) -> list[Receipt] | None:
        """Ask the carrier about records whose receipt never came (at most ``pull_batch`` at a
        time); return a Receipt for each it has a final word on. None: this carrier has no status
        query. Raise :class:`CarrierError` when the carrier cannot be asked now."""
        return None

    #: how many records one ``pull_statuses`` call may ask about (the carrier's query limits)
    pull_batch: ClassVar[int] = 100

    def receipt_reply(self) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body the carrier expects once its push is taken."""
        return 200, {"success": True}

    async def close(self) -> None:  # an optional hook, empty by default
        """Release what the plugin opened itself (the HTTP session belongs to the gateway)."""


# -- reading a push of delivery reports (a JSON array of objects, as Tencent and Aliyun send) -------


@dataclass(frozen=True, slots=True)
class ReportFormat:
    """Where one carrier's JSON delivery report keeps each part of a :class:`Receipt`.

    :meth:`receipts` checks structure strictly: a body that is not an array of objects, or a report
    without its id, number or status, is :class:`MalformedReceipts` (the gateway answers 400 and
    changes nothing, so a format change upstream is noticed rather than silently ignored). A report
    whose number does not parse is dropped: no record can match it, since only valid numbers are
    ever sent.
    """

    carrier: str  # for the log line of a dropped report
    carrier_id: str  # the field holding the id the send returned
    delivered: Callable[[Mapping[str, Any]], bool]  # raises MalformedReceipts for a bad status
    number: Callable[[Mapping[str, Any]], str | None]  # E.164, or None when it does not parse
    code: str  # the field of the carrier's receipt code ...
    default_codes: tuple[str, str]  # ... and the code when it is empty: (delivered, not delivered)
    description: str
    reported_at: str
    segments: str | None = None  # the field of the segments billed; a missing or bad count says nothing

    def receipts(self, body: bytes) -> list[Receipt]:
        """Every report of one push that names a valid number, as Receipts."""
        try:
            reports = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MalformedReceipts("body is not JSON") from None
        if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
            raise MalformedReceipts("body is not an array of report objects")
        return [receipt for report in reports if (receipt := self._receipt(report)) is not None]

    def _receipt(self, report: Mapping[str, Any]) -> Receipt | None:
        carrier_id = report_text(report, self.carrier_id)
        delivered = self.delivered(report)
        e164 = self.number(report)
        if e164 is None:
            log.warning(
                "%s receipt for an unparsable number dropped (%s %s)",
                self.carrier,
                self.carrier_id,
                carrier_id,
            )
            return None
        size = whole_number(report.get(self.segments)) if self.segments else None
        return Receipt(
            carrier_id=carrier_id,
            e164=e164,
            delivered=delivered,
            code=report_text(report, self.code, required=False) or self.default_codes[0 if delivered else 1],
            description=report_text(report, self.description, required=False),
            reported_at=report_text(report, self.reported_at, required=False) or None,
            segments=size if size is not None and size >= 1 else None,
        )


def report_text(report: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    """A string field, stripped; numbers are taken as their digits (a number may come unquoted)."""
    value = report.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise MalformedReceipts(f"report field {name!r} missing or not a string")
    return value.strip()


def whole_number(value: Any) -> int | None:
    """A count written as a string of digits (``"1"``) or as a number; None for anything else."""
    if isinstance(value, str):
        digits = value.strip()
        return int(digits) if digits.isascii() and digits.isdigit() else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def report_e164(*candidates: str) -> str | None:
    """The first candidate spelling that is a valid number, in E.164; None when none is."""
    for candidate in candidates:
        try:
            return parse_phone(candidate).e164
        except InvalidPhone:
            continue
    return None
