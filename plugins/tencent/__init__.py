"""Tencent Cloud SMS: API 3.0 ``SendSms`` (version 2021-01-11), TC3-signed, over aiohttp.

Tencent answers HTTP 200 for business errors too: ``Response.Error`` fails the whole call (one
CarrierError for every number), otherwise ``SendStatusSet`` holds one status per number. A call
must be all mainland or all international numbers, so a mixed batch goes out as two concurrent
calls instead of failing with ``ContainDomesticAndInternationalPhoneNumber``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from yarl import URL

from gateway.carriers.base import Carrier, CarrierError, FailureKind, Outcome, Receipt, Recipient, SendBatch
from gateway.clock import system_clock
from gateway.config.reader import ConfigError, Reader
from plugins.receipts import tencent_receipts
from plugins.tencent.signing import request_headers

__all__ = ["ERRORS", "TencentCarrier", "TencentOptions", "classify"]

log = logging.getLogger(__name__)

ACTION, VERSION = "SendSms", "2021-01-11"
SESSION_CONTEXT_MAX = 511  # bytes; Tencent takes "under 512"

_CALLER, _RATE = FailureKind.CALLER, FailureKind.RATE_LIMITED
_RETRY, _PERM = FailureKind.RETRYABLE, FailureKind.PERMANENT
#: Tencent error code -> whose fault it is; documented code by code in docs/carriers.md.
#: Each code may come as ``Response.Error`` or as one number's ``SendStatusSet[].Code``.
ERRORS: dict[str, FailureKind] = {
    # the number or the caller's parameter values: the caller's 400
    **dict.fromkeys((
        "InvalidParameterValue.IncorrectPhoneNumber", "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.PhoneNumberOnBlacklist",
        "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
        "InvalidParameterValue.TemplateParameterFormatError",
        "InvalidParameterValue.TemplateParameterLengthLimit",
        "InvalidParameterValue.ContentLengthLimit",
        "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
        "FailedOperation.ContainSensitiveWord", "InvalidParameter.DirtyWordFound",
    ), _CALLER),
    # Tencent's per-number frequency limits: the caller's 429
    **dict.fromkeys((
        "LimitExceeded.PhoneNumberThirtySecondLimit", "LimitExceeded.PhoneNumberOneHourLimit",
        "LimitExceeded.PhoneNumberDailyLimit", "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "LimitExceeded.DeliveryFrequencyLimit",
    ), _RATE),
    # our account throttled, Tencent in trouble, or a time window: later or elsewhere may work
    **dict.fromkeys((
        "RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded",
        "RequestLimitExceeded.GlobalRegionUinLimitExceeded", "RequestLimitExceeded.IPLimitExceeded",
        "InternalError", "InternalError.Timeout", "InternalError.SendAndRecvFail",
        "InternalError.OtherError", "InternalError.UnknownError", "ResourceUnavailable",
        "LimitExceeded.AppDailyLimit", "LimitExceeded.DailyLimit",
        "FailedOperation.MarketingSendTimeConstraint",
    ), _RETRY),
    # credentials, clock, balance, sign/template approval, our own request: fix the config
    **dict.fromkeys((
        "AuthFailure.SignatureFailure", "AuthFailure.SignatureExpire",
        "AuthFailure.SecretIdNotFound", "AuthFailure.InvalidSecretId",
        "AuthFailure.InvalidAuthorization", "AuthFailure.UnauthorizedOperation",
        "AuthFailure.TokenFailure", "AuthFailure.MFAFailure", "InternalError.RequestTimeException",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "UnauthorizedOperation.SerivceSuspendDueToArrears",
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.TemplateIncorrectOrUnapproved", "FailedOperation.MissingTemplateList",
        "FailedOperation.MissingSignatureList", "FailedOperation.MissingSignature",
        "InvalidParameterValue.SdkAppIdNotExist", "InvalidParameter.AppidAndBizId",
        "UnauthorizedOperation.SmsSdkAppIdVerifyFail", "UnauthorizedOperation.SdkAppIdIsDisabled",
        "UnauthorizedOperation.RequestIpNotInWhitelist",
        "UnauthorizedOperation.RequestPermissionDeny",
        "UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny",
        "UnsupportedOperation.UnsuportedRegion", "LimitExceeded.PhoneNumberCountLimit",
        "MissingParameter", "MissingParameter.EmptyPhoneNumberSet", "InvalidParameter",
        "InvalidParameter.InvalidParameters", "FailedOperation.FailResolvePacket",
        "FailedOperation.JsonParseFail", "InternalError.JsonParseFail",
        "FailedOperation.OtherError", "FailedOperation.ParametersOtherError",
        "InternalError.SigFieldMissing", "InternalError.SigVerificationFail",
        "InternalError.RestApiInterfaceNotExist", "ActionOffline", "InvalidAction",
        "NoSuchVersion", "UnsupportedRegion", "UnknownParameter", "UnsupportedOperation",
        "UnauthorizedOperation",
    ), _PERM),
}


def classify(code: str) -> FailureKind:
    """Unknown codes are permanent: a retry cannot fix what nobody understood."""
    return ERRORS.get(code, FailureKind.PERMANENT)


@dataclass(frozen=True, slots=True)
class TencentOptions:
    endpoint: URL
    region: str
    secret_id: str
    secret_key: str = field(repr=False)  # never printed with the options
    sdk_app_id: str = ""
    sign_name: str = ""


def read_endpoint(reader: Reader, default: str) -> URL:
    """An absolute http(s) URL; its host (and port) become the signed ``Host``."""
    url = URL(reader.text("endpoint", default))
    if url.scheme not in ("http", "https") or not url.host or url.user or url.query_string:
        raise ConfigError(reader.where("endpoint"), "must be an http(s) URL without query")
    return url


class TencentCarrier(Carrier):
    max_batch = 200  # PhoneNumberSet limit of one SendSms call

    clock = staticmethod(system_clock)  # replaced in tests to sign with a skewed clock

    @classmethod
    def read_options(cls, reader: Reader) -> TencentOptions:
        return TencentOptions(
            endpoint=read_endpoint(reader, "https://sms.tencentcloudapi.com"),
            region=reader.text("region", "ap-guangzhou"),
            secret_id=reader.text("secret_id"),
            secret_key=reader.text("secret_key"),
            sdk_app_id=reader.text("sdk_app_id"),
            sign_name=reader.text("sign_name"),
        )

    async def send(self, batch: SendBatch) -> list[Outcome]:
        routes = _routes(batch.recipients)
        if len(routes) <= 1:
            return await self._send_call(batch, batch.recipients)
        parts = [[batch.recipients[i] for i in indices] for indices in routes]
        results = await asyncio.gather(
            *(self._send_call(batch, part) for part in parts), return_exceptions=True
        )
        return _merge(batch, routes, parts, results)

    def parse_receipts(self, body: bytes) -> list[Receipt]:
        return tencent_receipts(body)

    def receipt_reply(self) -> tuple[int, dict[str, Any]]:
        return 200, {"result": 0, "errmsg": "OK"}

    async def _send_call(self, batch: SendBatch, recipients: Sequence[Recipient]) -> list[Outcome]:
        options: TencentOptions = self.options
        if not recipients:
            return []
        data = await self._post(orjson.dumps(self._payload(batch, recipients)))
        response = data.get("Response") if isinstance(data, dict) else None
        if not isinstance(response, dict):
            raise CarrierError(FailureKind.RETRYABLE, "BAD_RESPONSE", "no Response object")
        error = response.get("Error")
        if isinstance(error, dict):
            code = str(error.get("Code") or "UnknownError")
            raise CarrierError(classify(code), code, str(error.get("Message") or ""))
        statuses = response.get("SendStatusSet")
        if not isinstance(statuses, list):
            raise CarrierError(FailureKind.RETRYABLE, "BAD_RESPONSE", "no SendStatusSet")
        log.debug(
            "tencent %s: %d numbers, app %s, request %s",
            ACTION, len(recipients), options.sdk_app_id, response.get("RequestId"),
        )
        return _match(recipients, statuses)

    def _payload(self, batch: SendBatch, recipients: Sequence[Recipient]) -> dict[str, Any]:
        options: TencentOptions = self.options
        payload: dict[str, Any] = {
            "PhoneNumberSet": [r.e164 for r in recipients],
            "SmsSdkAppId": options.sdk_app_id,
            "TemplateId": batch.template_id,
            "TemplateParamSet": batch.ordered_params(),
        }
        if _domestic(recipients[0]):
            payload["SignName"] = options.sign_name  # required for mainland numbers only
        # One context per call is echoed for every number, so it only identifies a message when
        # the call has one recipient; SerialNo identifies each number in receipts anyway.
        context = recipients[0].message_id
        if len(recipients) == 1 and len(context.encode()) <= SESSION_CONTEXT_MAX:
            payload["SessionContext"] = context
        return payload

    async def _post(self, body: bytes) -> Any:
        options: TencentOptions = self.options
        headers = request_headers(
            action=ACTION, version=VERSION, region=options.region, secret_id=options.secret_id,
            secret_key=options.secret_key, host=options.endpoint.host_port_subcomponent or "",
            body=body, timestamp=int(self.clock()),
        )
        timeout = aiohttp.ClientTimeout(total=self.backend.timeout)
        try:
            async with self.session.post(
                options.endpoint, data=body, headers=headers, timeout=timeout
            ) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise CarrierError(
                FailureKind.TIMEOUT, "TIMEOUT", f"no answer within {self.backend.timeout:g}s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise CarrierError(FailureKind.RETRYABLE, "NETWORK_ERROR", repr(exc)) from exc
        if status != 200:  # Tencent sends business errors with 200; anything else is transport
            raise CarrierError(FailureKind.RETRYABLE, f"HTTP_{status}", "unexpected HTTP status")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CarrierError(FailureKind.RETRYABLE, "BAD_RESPONSE", "malformed JSON") from exc


def _domestic(recipient: Recipient) -> bool:
    return recipient.e164.startswith("+86")


def _routes(recipients: Sequence[Recipient]) -> list[list[int]]:
    """Indexes of the mainland numbers and of the others; empty groups dropped."""
    mainland = [i for i, r in enumerate(recipients) if _domestic(r)]
    abroad = [i for i, r in enumerate(recipients) if not _domestic(r)]
    return [group for group in (mainland, abroad) if group]


def _merge(
    batch: SendBatch,
    routes: list[list[int]],
    parts: list[list[Recipient]],
    results: list[list[Outcome] | BaseException],
) -> list[Outcome]:
    """Outcomes of concurrent calls, in the batch's order; a call's CarrierError covers its part."""
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, CarrierError):
            raise result
    if all(isinstance(result, CarrierError) for result in results):
        raise results[0]  # type: ignore[misc]
    ordered: list[Outcome] = [None] * len(batch.recipients)  # type: ignore[list-item]
    for indices, part, result in zip(routes, parts, results, strict=True):
        if isinstance(result, CarrierError):
            result = result.outcomes(dataclasses.replace(batch, recipients=part))
        for index, outcome in zip(indices, result, strict=True):  # type: ignore[arg-type]
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
            outcomes.append(Outcome(
                recipient.e164, False, kind=FailureKind.PERMANENT, code="MissingSendStatus",
                message="the carrier returned no status for this number",
            ))
            continue
        status = found.pop(0)
        code = str(status.get("Code"))
        if code == "Ok":
            serial = str(status.get("SerialNo") or "") or None
            outcomes.append(Outcome(recipient.e164, True, carrier_id=serial))
        else:
            outcomes.append(Outcome(
                recipient.e164, False, kind=classify(code), code=code,
                message=str(status.get("Message") or ""),
            ))
    return outcomes
