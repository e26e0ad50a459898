"""Alibaba Cloud SMS: Dysmsapi 2017-05-25 ``SendSms``, V3-signed (ACS3-HMAC-SHA256), over aiohttp.

Aliyun answers per call, not per number: ``Code == "OK"`` accepts every number (all share one
``BizId``), anything else refuses them all. Business errors come with HTTP 200, gateway and
authentication errors with 4xx/5xx and the same JSON shape. When a call of several numbers is
refused for something one number did (invalid, rate-limited), nothing was sent, so the numbers
are resent one per call, concurrently, and only the guilty ones fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from yarl import URL

from gateway.carriers.base import Carrier, CarrierError, FailureKind, Outcome, Receipt, Recipient, SendBatch
from gateway.clock import system_clock
from gateway.config.reader import ConfigError, Reader
from plugins.aliyun.signing import acs3_headers, canonical_query
from plugins.receipts import aliyun_receipts

__all__ = ["ERRORS", "NUMBER_CODES", "AliyunCarrier", "AliyunOptions", "classify"]

log = logging.getLogger(__name__)

ACTION, VERSION = "SendSms", "2017-05-25"
OUT_ID_MAX = 255  # characters; Aliyun takes "under 256"
QUERY_MAX = 4096  # bytes of query string; a longer one goes in a form body (URL length limits)
FORM = "application/x-www-form-urlencoded"

_CALLER, _RATE = FailureKind.CALLER, FailureKind.RATE_LIMITED
_RETRY, _PERM = FailureKind.RETRYABLE, FailureKind.PERMANENT
#: Aliyun error code -> whose fault it is; documented code by code in docs/carriers.md.
ERRORS: dict[str, FailureKind] = {
    # the number or the caller's parameter values: the caller's 400
    **dict.fromkeys((
        "isv.MOBILE_NUMBER_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL", "isv.INVALID_JSON_PARAM", "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.SMS_CONTENT_ILLEGAL",
    ), _CALLER),
    # per number and signature: 1/min, 5/h, 10/day by default: the caller's 429
    "isv.BUSINESS_LIMIT_CONTROL": _RATE,
    # our account throttled or its quota reached, Aliyun in trouble: later or elsewhere may work
    **dict.fromkeys((
        "Throttling", "Throttling.User", "Throttling.Api", "isv.DAY_LIMIT_CONTROL",
        "isv.MONTH_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "InternalError", "ServiceUnavailable",
        "SignatureNonceUsed",
    ), _RETRY),
    # credentials, clock, balance, sign/template approval, our own request: fix the config
    **dict.fromkeys((
        "SignatureDoesNotMatch", "IncompleteSignature", "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive", "Forbidden.RAM", "isp.RAM_PERMISSION_DENY",
        "InvalidTimeStamp.Expired", "isv.AMOUNT_NOT_ENOUGH", "isv.OUT_OF_SERVICE",
        "isv.ACCOUNT_NOT_EXISTS", "isv.ACCOUNT_ABNORMAL", "isv.PRODUCT_UN_SUBSCRIPT",
        "isv.PRODUCT_UNSUBSCRIBE", "isv.DENY_IP_RANGE", "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_SIGN_ILLEGAL", "isv.SIGN_STATE_ILLEGAL",
        "isv.SMS_SIGNATURE_SCENE_ILLEGAL", "isv.EXTEND_CODE_ERROR",
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED", "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.INVALID_PARAMETERS", "MissingPhoneNumbers", "MissingSignName", "MissingTemplateCode",
    ), _PERM),
}
#: Codes caused by one number of a call: a call of several is then resent number by number.
NUMBER_CODES = frozenset(
    {"isv.MOBILE_NUMBER_ILLEGAL", "isv.BUSINESS_LIMIT_CONTROL", "isv.DOMESTIC_NUMBER_NOT_SUPPORTED"}
)


def classify(code: str) -> FailureKind:
    """Unknown codes are permanent: a retry cannot fix what nobody understood."""
    return ERRORS.get(code, FailureKind.PERMANENT)


@dataclass(frozen=True, slots=True)
class AliyunOptions:
    endpoint: URL
    access_key_id: str
    access_key_secret: str = field(repr=False)  # never printed with the options
    sign_name: str = ""


class AliyunCarrier(Carrier):
    max_batch = 1000  # PhoneNumbers limit of one SendSms call

    clock = staticmethod(system_clock)  # replaced in tests to sign with a skewed clock

    @classmethod
    def read_options(cls, reader: Reader) -> AliyunOptions:
        endpoint = URL(reader.text("endpoint", "https://dysmsapi.aliyuncs.com"))
        if endpoint.scheme not in ("http", "https") or not endpoint.host or endpoint.query_string:
            raise ConfigError(reader.where("endpoint"), "must be an http(s) URL without query")
        return AliyunOptions(
            endpoint=endpoint,
            access_key_id=reader.text("access_key_id"),
            access_key_secret=reader.text("access_key_secret"),
            sign_name=reader.text("sign_name"),
        )

    async def send(self, batch: SendBatch) -> list[Outcome]:
        if not batch.recipients:
            return []
        try:
            return await self._send_call(batch, batch.recipients)
        except CarrierError as error:
            if len(batch.recipients) < 2 or error.code not in NUMBER_CODES:
                raise
            log.info("aliyun %s on a call of %d numbers: resending one by one",
                     error.code, len(batch.recipients))
        results = await asyncio.gather(
            *(self._send_call(batch, [r]) for r in batch.recipients), return_exceptions=True
        )
        outcomes: list[Outcome] = []
        for recipient, result in zip(batch.recipients, results, strict=True):
            if isinstance(result, CarrierError):
                result = result.outcomes(dataclasses.replace(batch, recipients=[recipient]))
            elif isinstance(result, BaseException):
                raise result
            outcomes.extend(result)
        return outcomes

    def parse_receipts(self, body: bytes) -> list[Receipt]:
        return aliyun_receipts(body)

    def receipt_reply(self) -> tuple[int, dict[str, Any]]:
        return 200, {"code": 0, "msg": "接收成功"}

    async def _send_call(self, batch: SendBatch, recipients: Sequence[Recipient]) -> list[Outcome]:
        status, data, throttled = await self._post(self._query(batch, recipients))
        code = str(data.get("Code") or "")
        if status == 200 and code == "OK":
            log.debug("aliyun %s: %d numbers, request %s",
                      ACTION, len(recipients), data.get("RequestId"))
            biz_id = str(data.get("BizId") or "") or None
            return [Outcome(r.e164, True, carrier_id=biz_id) for r in recipients]
        if not code:
            raise CarrierError(FailureKind.RETRYABLE, f"HTTP_{status}", "answer without a Code")
        kind = FailureKind.RETRYABLE if status >= 500 or throttled else classify(code)
        raise CarrierError(kind, code, _reason(data.get("Message")))

    def _query(self, batch: SendBatch, recipients: Sequence[Recipient]) -> dict[str, str]:
        options: AliyunOptions = self.options
        query = {
            "PhoneNumbers": ",".join(_number(r.e164) for r in recipients),
            "SignName": options.sign_name,
            "TemplateCode": batch.template_id,
        }
        if batch.params:
            query["TemplateParam"] = orjson.dumps(dict(batch.params)).decode()
        # One OutId per call is echoed for every number, so it only names a message when the call
        # has one recipient; receipts of a larger call are matched by (BizId, phone number).
        if len(recipients) == 1 and len(recipients[0].message_id) <= OUT_ID_MAX:
            query["OutId"] = recipients[0].message_id
        return query

    async def _post(self, params: dict[str, str]) -> tuple[int, dict[str, Any], bool]:
        """POST the parameters, signed: returns (status, JSON answer, throttled).

        Like the SDK, the parameters go in the query string; only when that would be long
        (hundreds of numbers) do they go in a form body, which the signature covers by its hash.
        """
        options: AliyunOptions = self.options
        endpoint, encoded = options.endpoint, canonical_query(params)
        in_query = len(encoded) <= QUERY_MAX
        body = b"" if in_query else encoded.encode()
        headers = acs3_headers(
            method="POST", host=endpoint.host_port_subcomponent or "", path=endpoint.raw_path,
            query=params if in_query else {}, body=body, action=ACTION, version=VERSION,
            timestamp=self.clock(), nonce=uuid.uuid4().hex, access_key_id=options.access_key_id,
            access_key_secret=options.access_key_secret, content_type=None if in_query else FORM,
        )
        url = URL(f"{endpoint}?{encoded}", encoded=True) if in_query else endpoint
        timeout = aiohttp.ClientTimeout(total=self.backend.timeout)
        try:
            async with self.session.post(
                url, data=body or None, headers=headers, timeout=timeout
            ) as response:
                raw = await response.read()
                status = response.status
                throttled = "x-acs-retry-after" in response.headers
        except TimeoutError as exc:
            raise CarrierError(
                FailureKind.TIMEOUT, "TIMEOUT", f"no answer within {self.backend.timeout:g}s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise CarrierError(FailureKind.RETRYABLE, "NETWORK_ERROR", repr(exc)) from exc
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            code = "BAD_RESPONSE" if status == 200 else f"HTTP_{status}"
            raise CarrierError(FailureKind.RETRYABLE, code, "malformed JSON")
        return status, data, throttled


def _number(e164: str) -> str:
    """Mainland numbers as 11 digits, others as country code + number without ``+``."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


def _reason(message: Any) -> str:
    # SignatureDoesNotMatch quotes the server's string to sign, which holds the phone numbers.
    return str(message or "").split("server string to sign is", 1)[0].strip()
