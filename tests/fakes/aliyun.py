"""A fake Alibaba Cloud Dysmsapi upstream (2017-05-25 ``SendSms``, ``QuerySendDetails``).

It verifies V3 (``Authorization: ACS3-HMAC-SHA256 ...``) requests on its own, from the received
method, path, headers, query and raw body, and answers in Aliyun's shapes: 4xx/5xx gateway errors
with ``HostId``/``Recommend``, business errors with HTTP 200 and ``Code != "OK"``, all-or-nothing
per call. Status queries and ``SmsReport`` pushes (``sms_reports``) come from the messages it took.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
from aiohttp import web

from tests.fakes import Sent, Upstream
from tests.fakes.aliyun_messages import check_query, query_details, sms_reports, to_e164

__all__ = [
    "ACCESS_KEY_ID",
    "ACCESS_KEY_SECRET",
    "CREDENTIALS",
    "AliyunUpstream",
    "create_app",
    "sms_reports",
    "to_e164",
]

ACCESS_KEY_ID = "LTAIfakeAccessKeyId00000"
ACCESS_KEY_SECRET = "fakeAccessKeySecret000000000000"
CREDENTIALS = {"access_key_id": ACCESS_KEY_ID, "access_key_secret": ACCESS_KEY_SECRET}  # what it accepts
MAX_SKEW = 900  # seconds: InvalidTimeStamp.Expired beyond 15 minutes

# Codes that Aliyun's API gateway answers with an HTTP error status; the rest come with 200.
GATEWAY_STATUS = {
    "IncompleteSignature": 400,
    "SignatureDoesNotMatch": 400,
    "InvalidAccessKeyId.NotFound": 404,
    "InvalidAccessKeyId.Inactive": 400,
    "InvalidTimeStamp.Expired": 400,
    "SignatureNonceUsed": 400,
    "Throttling.User": 400,
    "Throttling.Api": 400,
    "Throttling": 400,
    "Forbidden.RAM": 403,
    "MissingPhoneNumbers": 400,
    "MissingSignName": 400,
    "MissingTemplateCode": 400,
    "MissingPhoneNumber": 400,
    "MissingSendDate": 400,
    "MissingPageSize": 400,
    "MissingCurrentPage": 400,
    "InvalidAction.NotFound": 404,
    "InternalError": 500,
    "ServiceUnavailable": 503,
}
MESSAGES = {
    "IncompleteSignature": "The request signature does not conform to Aliyun standards.",
    "SignatureDoesNotMatch": "Specified signature is not matched with our calculation.",
    "InvalidAccessKeyId.NotFound": "Specified access key is not found.",
    "InvalidTimeStamp.Expired": "Specified time stamp or date value is expired.",
    "SignatureNonceUsed": "Specified signature nonce was used already.",
    "Throttling.User": "Request was denied due to user flow control.",
    "InternalError": "The request processing has failed due to some unknown error.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.BUSINESS_LIMIT_CONTROL": "触发分钟级流控Permits:1",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板缺少变量",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.MOBILE_COUNT_OVER_LIMIT": "手机号码数量超过限制",
    "isp.SYSTEM_ERROR": "系统错误",
}
_ACS3 = re.compile(
    r"ACS3-HMAC-SHA256 Credential=(?P<id>[^,]+),SignedHeaders=(?P<signed>[a-z0-9;-]+),"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass
class AliyunUpstream(Upstream):
    """The fake's state: credentials, nonces seen, the ``sms_size`` its pushes give (``sms_size``, or
    ``sms_sizes`` per E.164; None leaves it out), and the shared switches (``number_codes``: a
    number's code fails its whole call, as the real service does)."""

    access_key_id: str = ACCESS_KEY_ID
    access_key_secret: str = ACCESS_KEY_SECRET
    retry_after: int | None = None  # send x-acs-retry-after with error answers
    sms_size: Any = "1"
    sms_sizes: dict[str, Any] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)
    _biz: itertools.count[int] = field(default_factory=lambda: itertools.count(900619746936498440))


UPSTREAM = web.AppKey("aliyun_upstream", AliyunUpstream)


def create_app(upstream: AliyunUpstream) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream
    app.router.add_route("*", "/", _handle)
    return app


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _sorted_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()))


def _answer(up: AliyunUpstream, host: str, code: str, message: str | None = None) -> web.Response:
    status = GATEWAY_STATUS.get(code, 200)
    body: dict[str, Any] = {
        "RequestId": str(uuid.uuid4()).upper(),
        "Code": code,
        "Message": message or MESSAGES.get(code, code),
    }
    if status != 200:
        body["HostId"] = host
        body["Recommend"] = f"https://api.aliyun.com/troubleshoot?q={code}&product=Dysmsapi"
    headers = {"x-acs-retry-after": str(up.retry_after)} if up.retry_after else None
    return web.json_response(body, status=status, headers=headers)


def _fresh(up: AliyunUpstream, stamp: str, nonce: str) -> str | None:
    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return "InvalidTimeStamp.Expired"
    if abs(up.clock() - when) > MAX_SKEW:
        return "InvalidTimeStamp.Expired"
    if not nonce or nonce in up.nonces:
        return "SignatureNonceUsed"
    up.nonces.add(nonce)
    return None


def _mismatch(to_sign: str) -> tuple[str, str]:
    """Aliyun quotes its own string to sign, which is how callers debug their encoding."""
    message = f"{MESSAGES['SignatureDoesNotMatch']} server string to sign is:{to_sign}"
    return "SignatureDoesNotMatch", message


def _verify_v3(request: web.Request, body: bytes, up: AliyunUpstream) -> tuple[str, str] | None:
    match = _ACS3.fullmatch(request.headers.get("Authorization", ""))
    if match is None:
        return "IncompleteSignature", ""
    signed = match["signed"].split(";")
    acs = {name.lower() for name in request.headers if name.lower().startswith("x-acs-")}
    if not {"host", *acs} <= set(signed) or signed != sorted(signed):
        return "IncompleteSignature", ""
    if match["id"] != up.access_key_id:
        return "InvalidAccessKeyId.NotFound", ""
    headers = "".join(
        f"{name}:{','.join(v.strip() for v in request.headers.getall(name, []))}\n" for name in signed
    )
    canonical = "\n".join(
        (
            request.method,
            request.path,
            _sorted_query(request.query),
            headers,
            match["signed"],
            hashlib.sha256(body).hexdigest(),  # the body as received, not the header's claim
        )
    )
    to_sign = f"ACS3-HMAC-SHA256\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(up.access_key_secret.encode(), to_sign.encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), match["signature"]):
        return _mismatch(to_sign)
    fresh = _fresh(
        up, request.headers.get("x-acs-date", ""), request.headers.get("x-acs-signature-nonce", "")
    )
    return (fresh, "") if fresh else None


def _check(params: dict[str, str], up: AliyunUpstream) -> str | None:
    """The Code a SendSms with these parameters fails with, or None when it is accepted."""
    for name in ("PhoneNumbers", "SignName", "TemplateCode"):
        if not params.get(name):
            return f"Missing{name}"
    numbers = params["PhoneNumbers"].split(",")
    if len(numbers) > 1000:
        return "isv.MOBILE_COUNT_OVER_LIMIT"
    phones = [to_e164(number) for number in numbers]
    if None in phones:
        return "isv.MOBILE_NUMBER_ILLEGAL"
    if "TemplateParam" in params:
        try:
            values = orjson.loads(params["TemplateParam"])
        except orjson.JSONDecodeError:
            values = None
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return "isv.INVALID_JSON_PARAM"
    return next((up.number_codes[p] for p in phones if p in up.number_codes), None)


def _send_sms(params: dict[str, str], up: AliyunUpstream) -> dict[str, Any]:
    biz_id = f"{next(up._biz)}^0"
    echo = {"OutId": params.get("OutId", ""), "TemplateCode": params["TemplateCode"]}
    for number in params["PhoneNumbers"].split(","):
        up.sent.append(Sent(biz_id, str(to_e164(number)), up.clock(), {**echo, "PhoneNum": number}))
    return {"Code": "OK", "Message": "OK", "BizId": biz_id}


ACTIONS = {"SendSms": (_check, _send_sms), "QuerySendDetails": (check_query, query_details)}


async def _handle(request: web.Request) -> web.StreamResponse:
    up = request.app[UPSTREAM]
    with up.answering():
        body, faulty = await up.receive(request)
        if faulty is not None:
            return faulty
        params = dict(request.query)
        if request.content_type == "application/x-www-form-urlencoded":
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        failure = _verify_v3(request, body, up)
        action = ACTIONS.get(request.headers.get("x-acs-action", ""))
        host = request.headers.get("Host", "")
        if failure is not None:
            return _answer(up, host, failure[0], failure[1])
        if action is None:
            return _answer(up, host, "InvalidAction.NotFound", "Specified api is not found.")
        check, answer = action
        if (code := up.error_code or check(params, up)) is not None:
            return _answer(up, host, code)
        return web.json_response({**answer(params, up), "RequestId": str(uuid.uuid4()).upper()})
