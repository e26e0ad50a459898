"""Alibaba Cloud SMS: Dysmsapi 2017-05-25 ``SendSms``, V3-signed (ACS3-HMAC-SHA256), over aiohttp.

Aliyun answers per call, not per number: ``Code == "OK"`` accepts every number (all share one
``BizId``), anything else refuses them all. Business errors come with HTTP 200, gateway and
authentication errors with 4xx/5xx and the same JSON shape. When a call of several numbers is
refused for something one number did (invalid, rate-limited), nothing was sent, so the numbers
are resent one per call, concurrently, and only the guilty ones fail.

The package: this module, ``errors`` (code -> FailureKind), ``signing`` (V3), ``numbers``, ``receipts``
(the delivery-report push) and ``status`` (asking for the receipts that never came).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

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
from gateway.carriers.http import Endpoint, Reply, post
from gateway.clock import system_clock
from gateway.config.fields import Secret, Text
from gateway.config.model import Settings
from plugins.aliyun.errors import NUMBER_CODES, classify
from plugins.aliyun.numbers import aliyun_number
from plugins.aliyun.receipts import aliyun_receipts
from plugins.aliyun.signing import acs3_headers, canonical_query
from plugins.aliyun.status import QUERY_ACTION, pull

__all__ = ["FORM", "AliyunCarrier", "AliyunOptions"]

log = logging.getLogger(__name__)

ACTION, VERSION = "SendSms", "2017-05-25"
OUT_ID_MAX = 255  # characters; Aliyun takes "under 256"
QUERY_MAX = 4096  # bytes of query string; a longer one goes in a form body (URL length limits)
FORM = "application/x-www-form-urlencoded"


class AliyunOptions(Settings, frozen=True, kw_only=True):
    endpoint: Endpoint = URL("https://dysmsapi.aliyuncs.com")
    access_key_id: Text
    access_key_secret: Secret  # never printed with the options
    sign_name: Text


class AliyunCarrier(Carrier[AliyunOptions]):
    name = "aliyun"
    max_batch = 1000  # PhoneNumbers limit of one SendSms call
    pull_batch = 50  # records asked about at once: one call (or more) per record, a few at a time
    Options = AliyunOptions

    clock = staticmethod(system_clock)  # replaceable, to sign with a skewed clock

    async def send(self, batch: SendBatch) -> list[Outcome]:
        if not batch.recipients:
            return []
        try:
            return await self._send_call(batch, batch.recipients)
        except CarrierError as error:
            if len(batch.recipients) < 2 or error.code not in NUMBER_CODES:
                raise
            log.info(
                "%s %s on a call of %d numbers: resending one by one",
                self.name,
                error.code,
                len(batch.recipients),
            )
        results = await asyncio.gather(
            *(self._send_call(batch, [r]) for r in batch.recipients), return_exceptions=True
        )
        outcomes: list[Outcome] = []
        for recipient, result in zip(batch.recipients, results, strict=True):
            if isinstance(result, CarrierError):
                result = result.outcomes(msgspec.structs.replace(batch, recipients=[recipient]))
            elif isinstance(result, BaseException):
                raise result
            outcomes.extend(result)
        return outcomes

    def parse_receipts(self, body: bytes) -> list[Receipt]:
        return aliyun_receipts(body)

    def receipt_reply(self) -> tuple[int, dict[str, Any]]:
        return 200, {"code": 0, "msg": "接收成功"}

    async def pull_statuses(self, queries: Sequence[StatusQuery]) -> list[Receipt]:
        return await pull(self._query_details, queries, self.clock())

    async def _send_call(self, batch: SendBatch, recipients: Sequence[Recipient]) -> list[Outcome]:
        reply = await self._post(self._send_params(batch, recipients), ACTION)
        data = reply.json_object()
        if reply.status == 200 and data.get("Code") == "OK":
            log.debug(
                "%s %s: %d numbers, request %s", self.name, ACTION, len(recipients), data.get("RequestId")
            )
            biz_id = str(data.get("BizId") or "") or None
            return [Outcome(r.e164, True, carrier_id=biz_id) for r in recipients]
        raise _refusal(reply, data)

    async def _query_details(self, params: dict[str, str]) -> dict[str, Any]:
        """One signed QuerySendDetails: its answer when it is ``OK``, else the CarrierError."""
        reply = await self._post(params, QUERY_ACTION)
        data = reply.json_object()
        if reply.status == 200 and data.get("Code") == "OK":
            return data
        raise _refusal(reply, data)

    def _send_params(self, batch: SendBatch, recipients: Sequence[Recipient]) -> dict[str, str]:
        query = {
            "PhoneNumbers": ",".join(aliyun_number(r.e164) for r in recipients),
            "SignName": self.options.sign_name,
            "TemplateCode": batch.template_id,
        }
        if batch.params:
            query["TemplateParam"] = orjson.dumps(dict(batch.params)).decode()
        # One OutId per call is echoed for every number, so it only names a message when the call
        # has one recipient; receipts of a larger call are matched by (BizId, phone number).
        if len(recipients) == 1 and len(recipients[0].message_id) <= OUT_ID_MAX:
            query["OutId"] = recipients[0].message_id
        return query

    async def _post(self, params: dict[str, str], action: str) -> Reply:
        """POST the parameters of one action, signed.

        Like the SDK, the parameters go in the query string; only when that would be long
        (hundreds of numbers) do they go in a form body, which the signature covers by its hash.
        """
        options = self.options
        endpoint, encoded = options.endpoint, canonical_query(params)
        in_query = len(encoded) <= QUERY_MAX
        body = b"" if in_query else encoded.encode()
        headers = acs3_headers(
            method="POST",
            host=endpoint.host_port_subcomponent or "",
            path=endpoint.raw_path,
            query=params if in_query else {},
            body=body,
            action=action,
            version=VERSION,
            timestamp=self.clock(),
            nonce=uuid.uuid4().hex,
            access_key_id=options.access_key_id,
            access_key_secret=options.access_key_secret,
            content_type=None if in_query else FORM,
        )
        url = URL(f"{endpoint}?{encoded}", encoded=True) if in_query else endpoint
        return await post(
            self.session, url, data=body or None, headers=headers, time_limit=self.backend.timeout
        )


def _refusal(reply: Reply, data: dict[str, Any]) -> CarrierError:
    """What an answer other than ``OK`` means, for every number or record of the call."""
    code = str(data.get("Code") or "")
    if not code:
        return CarrierError(FailureKind.RETRYABLE, f"HTTP_{reply.status}", "answer without a Code")
    throttled = "x-acs-retry-after" in reply.headers
    kind = FailureKind.RETRYABLE if reply.status >= 500 or throttled else classify(code)
    return CarrierError(kind, code, _reason(data.get("Message")))


def _reason(message: Any) -> str:
    # SignatureDoesNotMatch quotes the server's string to sign, which holds the phone numbers.
    return str(message or "").split("server string to sign is", 1)[0].strip()
