"""Tencent Cloud SMS: API 3.0 ``SendSms`` (version 2021-01-11), TC3-signed, over aiohttp.

Tencent answers HTTP 200 for business errors too: ``Response.Error`` fails the whole call (one
CarrierError for every number), otherwise ``SendStatusSet`` holds one status per number. A call
must be all mainland or all international numbers, so a mixed batch goes out as two concurrent
calls instead of failing with ``ContainDomesticAndInternationalPhoneNumber``.

The package: this module (the carrier), ``errors`` (code -> FailureKind), ``signing`` (TC3),
``receipts`` (the delivery-report push) and ``status`` (asking for the receipts that never came).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any, cast

import msgspec
import orjson
from yarl import URL

from gateway.carriers.base import (
    Carrier,
    CarrierError,
    FailureKind,
    Outcome,
    Receipt,
    Recipient,
    SendBatch,
    StatusQuery,
)
from gateway.carriers.http import Endpoint, post
from gateway.clock import system_clock
from gateway.config.fields import Secret, Text
from gateway.config.model import Settings
from plugins.tencent.errors import classify
from plugins.tencent.receipts import tencent_receipts
from plugins.tencent.signing import request_headers
from plugins.tencent.status import PULL_ACTION, pull

__all__ = ["TencentCarrier", "TencentOptions"]

log = logging.getLogger(__name__)

ACTION, VERSION = "SendSms", "2021-01-11"
SESSION_CONTEXT_MAX = 511  # bytes; Tencent takes "under 512"


class TencentOptions(Settings, frozen=True, kw_only=True):
    endpoint: Endpoint = URL("https://sms.tencentcloudapi.com")
    region: Text = "ap-guangzhou"
    secret_id: Text
    secret_key: Secret  # never printed with the options
    sdk_app_id: Text
    sign_name: Text


class TencentCarrier(Carrier[TencentOptions]):
    name = "tencent"
    max_batch = 200  # PhoneNumberSet limit of one SendSms call
    pull_batch = 100  # records asked about at once: one call (or more) per number, a few at a time
    Options = TencentOptions

    clock = staticmethod(system_clock)  # replaceable, to sign with a skewed clock

    async def send(self, batch: SendBatch) -> list[Outcome]:
        regions = _by_region(batch.recipients)
        if len(regions) <= 1:
            return await self._send_call(batch, batch.recipients)
        parts = [[batch.recipients[i] for i in indices] for indices in regions]
        results = await asyncio.gather(
            *(self._send_call(batch, part) for part in parts), return_exceptions=True
        )
        return _merge(batch, regions, parts, results)

    def parse_receipts(self, body: bytes) -> list[Receipt]:
        return tencent_receipts(body)

    def receipt_reply(self) -> tuple[int, dict[str, Any]]:
        return 200, {"result": 0, "errmsg": "OK"}

    async def pull_statuses(self, queries: Sequence[StatusQuery]) -> list[Receipt]:
        call = partial(self._call, PULL_ACTION)
        return await pull(call, self.options.sdk_app_id, queries, int(self.clock()))

    async def _send_call(self, batch: SendBatch, recipients: Sequence[Recipient]) -> list[Outcome]:
        if not recipients:
            return []
        response = await self._call(ACTION, self._payload(batch, recipients))
        statuses = response.get("SendStatusSet")
        if not isinstance(statuses, list):
            raise CarrierError(FailureKind.RETRYABLE, "BAD_RESPONSE", "no SendStatusSet")
        log.debug(
            "%s %s: %d numbers, app %s, request %s",
            self.name,
            ACTION,
            len(recipients),
            self.options.sdk_app_id,
            response.get("RequestId"),
        )
        return _match(recipients, statuses)

    async def _call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST one signed action; its ``Response`` object, or CarrierError for ``Response.Error``."""
        body = orjson.dumps(payload)
        reply = await post(
            self.session,
            self.options.endpoint,
            data=body,
            headers=self._headers(action, body),
            time_limit=self.backend.timeout,
        )
        reply.expect_status(200)  # Tencent sends business errors with 200; anything else is transport
        data = reply.json()
        response = data.get("Response") if isinstance(data, dict) else None
        if not isinstance(response, dict):
            raise CarrierError(FailureKind.RETRYABLE, "BAD_RESPONSE", "no Response object")
        error = response.get("Error")
        if isinstance(error, dict):
            code = str(error.get("Code") or "UnknownError")
            raise CarrierError(classify(code), code, str(error.get("Message") or ""))
        return response

    def _payload(self, batch: SendBatch, recipients: Sequence[Recipient]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "PhoneNumberSet": [r.e164 for r in recipients],
            "SmsSdkAppId": self.options.sdk_app_id,
            "TemplateId": batch.template_id,
            "TemplateParamSet": batch.ordered_params(),
        }
        if _domestic(recipients[0]):
            payload["SignName"] = self.options.sign_name  # required for mainland numbers only
        # One context per call is echoed for every number, so it only identifies a message when
        # the call has one recipient; SerialNo identifies each number in receipts anyway.
        context = recipients[0].message_id
        if len(recipients) == 1 and len(context.encode()) <= SESSION_CONTEXT_MAX:
            payload["SessionContext"] = context
        return payload

    def _headers(self, action: str, body: bytes) -> dict[str, str]:
        options = self.options
        return request_headers(
            action=action,
            version=VERSION,
            region=options.region,
            secret_id=options.secret_id,
            secret_key=options.secret_key,
            host=options.endpoint.host_port_subcomponent or "",
            body=body,
            timestamp=int(self.clock()),
        )


def _domestic(recipient: Recipient) -> bool:
    return recipient.e164.startswith("+86")


def _by_region(recipients: Sequence[Recipient]) -> list[list[int]]:
    """Indexes of the mainland numbers and of the others; empty groups dropped."""
    mainland = [i for i, r in enumerate(recipients) if _domestic(r)]
    abroad = [i for i, r in enumerate(recipients) if not _domestic(r)]
    return [group for group in (mainland, abroad) if group]


def _merge(
    batch: SendBatch,
    regions: list[list[int]],
    parts: list[list[Recipient]],
    results: list[list[Outcome] | BaseException],
) -> list[Outcome]:
    """Outcomes of concurrent calls, in the batch's order; a call's CarrierError covers its part."""
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, CarrierError):
            raise result
    failures = [result for result in results if isinstance(result, CarrierError)]
    if len(failures) == len(results):
        raise failures[0]
    ordered: list[Outcome] = [None] * len(batch.recipients)  # type: ignore[list-item]  # all filled below
    for indices, part, result in zip(regions, parts, results, strict=True):
        if isinstance(result, CarrierError):
            result = result.outcomes(msgspec.structs.replace(batch, recipients=part))
        # the other exceptions were raised above
        for index, outcome in zip(indices, cast("list[Outcome]", result), strict=True):
            ordered[index] = outcome
    return ordered


def _match(recipients: Sequence[Recipient], statuses: list[Any]) -> list[Outcome]:
    """One Outcome per recipient, found by ``PhoneNumber``: the order is not guaranteed."""
    by_phone: dict[str, list[dict[str, Any]]] = {}
    for status in statuses:
        if isinstance(status, dict):
            by_phone.setdefault(str(status.get("PhoneNumber")), []).append(status)
    outcomes = []
    for recipient in recipients:
        found = by_phone.get(recipient.e164)
        if not found:
            # Unknown whether it went out: not retried, so a message is never sent twice.
            outcomes.append(
                Outcome(
                    recipient.e164,
                    False,
                    kind=FailureKind.PERMANENT,
                    code="MissingSendStatus",
                    message="the carrier returned no status for this number",
                )
            )
            continue
        status = found.pop(0)
        code = str(status.get("Code"))
        if code == "Ok":
            serial = str(status.get("SerialNo") or "") or None
            segments = _segments(status.get("Fee"))
            outcomes.append(Outcome(recipient.e164, True, carrier_id=serial, segments=segments))
        else:
            outcomes.append(
                Outcome(
                    recipient.e164,
                    False,
                    kind=classify(code),
                    code=code,
                    message=str(status.get("Message") or ""),
                )
            )
    return outcomes


def _segments(fee: Any) -> int | None:
    """``Fee`` is the number of segments billed; anything but a positive integer says nothing."""
    return fee if isinstance(fee, int) and not isinstance(fee, bool) and fee >= 1 else None
