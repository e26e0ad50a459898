"""A fake Tencent Cloud SMS upstream (API 3.0 2021-01-11: ``SendSms``, ``PullSmsSendStatusByPhoneNumber``).

It re-implements TC3-HMAC-SHA256 verification on its own (not with the plugin's signer), from the
received method, path, headers and raw body, so a signing bug cannot hide behind itself. Answers
have Tencent's shapes: HTTP 200 with ``Response.Error`` for whole-call errors, one ``SendStatusSet``
entry per number (with its ``Fee``) otherwise; the status pull answers from the messages it accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import phonenumbers
from aiohttp import web

from tests.fakes import Report, Sent, Upstream

__all__ = ["CREDENTIALS", "SDK_APP_ID", "SECRET_ID", "SECRET_KEY", "TencentUpstream", "create_app"]

SECRET_ID = "AKIDfakeSecretId000000000000000000"
SECRET_KEY = "fakeSecretKey0000000000000000000"
SDK_APP_ID = "1400006666"
CREDENTIALS = {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "sdk_app_id": SDK_APP_ID}  # what it accepts
MAX_SKEW = 300  # seconds: AuthFailure.SignatureExpire beyond five minutes
PULL_WINDOW = 7 * 86400  # seconds: BeginTime may be at most 7 days back
PULL_LIMIT = 100  # reports per answer at most
PULL_FIELDS = {"BeginTime", "EndTime", "Offset", "Limit", "PhoneNumber", "SmsSdkAppId"}

MESSAGES = {
    "InvalidParameterValue.LimitVerifyFail": "Limit verification failed.",
    "InvalidParameterValue.OffsetVerifyFail": "Offset verification failed.",
    "InvalidParameterValue.BeginTimeVerifyFail": "BeginTime verification failed.",
    "AuthFailure.InvalidAuthorization": "Authorization in the request header is invalid.",
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your SecretId is correct.",
    "AuthFailure.SignatureExpire": "Signature expired. "
    "Timestamp and server time cannot differ by more than five minutes.",
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. "
    "Please check your signature is correct.",
    "InvalidParameterValue.IncorrectPhoneNumber": "incorrect number format",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "the number of sms messages sent from "
    "a single mobile number within 30 seconds exceeds the upper limit",
    "LimitExceeded.PhoneNumberDailyLimit": "the number of sms messages sent from "
    "a single mobile number every day exceeds the upper limit",
    "FailedOperation.InsufficientBalanceInSmsPackage": "insufficient balance in SMS package",
    "RequestLimitExceeded": "Your current request times equals to `21` in a second, which "
    "exceeds the frequency limit `20` for a second. Please reduce the frequency of calls.",
    "InternalError": "An internal error has occurred. Retry your request.",
}
_AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>[0-9-]+)/(?P<service>[^/]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
_E164 = re.compile(r"\+[1-9][0-9]{5,14}")


@dataclass
class TencentUpstream(Upstream):
    """The fake's state: credentials, the ``Fee`` it bills (``fee``, or ``fees`` per E.164; None
    leaves the field out), and the shared switches (``number_codes``: a number's SendStatusSet code,
    and the whole-call error of a status pull for that number)."""

    secret_id: str = SECRET_ID
    secret_key: str = SECRET_KEY
    sdk_app_id: str = SDK_APP_ID
    fee: Any = 1
    fees: dict[str, Any] = field(default_factory=dict)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


UPSTREAM = web.AppKey("tencent_upstream", TencentUpstream)


def create_app(upstream: TencentUpstream) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream
    app.router.add_post("/", _handle)
    return app


def _error(code: str, message: str | None = None) -> web.Response:
    error = {"Code": code, "Message": message or MESSAGES.get(code, code)}
    return _answer({"Error": error})


def _answer(response: dict[str, Any]) -> web.Response:
    response["RequestId"] = str(uuid.uuid4())
    return web.json_response({"Response": response}, dumps=lambda o: orjson.dumps(o).decode())


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _verify(request: web.Request, body: bytes, up: TencentUpstream) -> str | None:
    """The AuthFailure code Tencent would answer, or None when the signature holds."""
    match = _AUTH.fullmatch(request.headers.get("Authorization", ""))
    timestamp = request.headers.get("X-TC-Timestamp", "")
    if match is None or not timestamp.isdigit():
        return "AuthFailure.InvalidAuthorization"
    if match["id"] != up.secret_id:
        return "AuthFailure.SecretIdNotFound"
    if abs(up.clock() - int(timestamp)) > MAX_SKEW:
        return "AuthFailure.SignatureExpire"
    date = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
    signed = match["signed"].split(";")
    if match["date"] != date or not {"content-type", "host"} <= set(signed):
        return "AuthFailure.SignatureFailure"
    # Header names and values lower-cased and trimmed, in SignedHeaders order (Tencent's rule).
    headers = "".join(f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in signed)
    payload = hashlib.sha256(body).hexdigest()
    canonical = (
        f"{request.method}\n{request.path}\n{request.query_string}\n{headers}\n{match['signed']}\n{payload}"
    )
    scope = f"{date}/{match['service']}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = _hmac(_hmac(_hmac(f"TC3{up.secret_key}".encode(), date), match["service"]), "tc3_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        return "AuthFailure.SignatureFailure"
    return None


def _check_headers(request: web.Request) -> str | None:
    if request.headers.get("X-TC-Version") != "2021-01-11":
        return "NoSuchVersion"
    if request.headers.get("X-TC-Region") not in ("ap-guangzhou", "ap-beijing", "ap-nanjing"):
        return "UnsupportedRegion"
    return None


def _check_send(payload: Any, up: TencentUpstream) -> str | None:
    """The whole-call error code for a malformed SendSms, or None."""
    if not isinstance(payload, dict):
        return "FailedOperation.JsonParseFail"
    phones = payload.get("PhoneNumberSet")
    if not isinstance(phones, list) or not phones:
        return "MissingParameter.EmptyPhoneNumberSet"
    if len(phones) > 200:
        return "LimitExceeded.PhoneNumberCountLimit"
    domestic = {str(phone).startswith("+86") for phone in phones}
    if len(domestic) > 1:
        return "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber"
    if payload.get("SmsSdkAppId") != up.sdk_app_id:
        return "InvalidParameterValue.SdkAppIdNotExist"
    if not payload.get("TemplateId") or (True in domestic and not payload.get("SignName")):
        return "MissingParameter"
    params = payload.get("TemplateParamSet", [])
    context = payload.get("SessionContext", "")
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        return "InvalidParameter"
    if not isinstance(context, str) or len(context.encode()) >= 512:
        return "InvalidParameter"
    return None


def _status(phone: Any, payload: dict[str, Any], up: TencentUpstream) -> dict[str, Any]:
    code = up.number_codes.get(phone)
    if code is None and not (isinstance(phone, str) and _E164.fullmatch(phone)):
        code = "InvalidParameterValue.IncorrectPhoneNumber"
    status = {
        "SerialNo": "",
        "PhoneNumber": phone,
        "Fee": 0,
        "SessionContext": payload.get("SessionContext", ""),
        "Code": code,
        "Message": MESSAGES.get(code or "", code),
        "IsoCode": "CN",
    }
    if code is None:
        serial = f"2433:{next(up._serial):028d}"
        up.sent.append(Sent(serial, phone, up.clock(), {"SessionContext": status["SessionContext"]}))
        status.update(SerialNo=serial, Fee=up.fees.get(phone, up.fee), Code="Ok", Message="send success")
        if status["Fee"] is None:
            del status["Fee"]
    return status


def _send_sms(payload: dict[str, Any], up: TencentUpstream) -> dict[str, Any]:
    return {"SendStatusSet": [_status(phone, payload, up) for phone in payload["PhoneNumberSet"]]}


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_pull(payload: Any, up: TencentUpstream) -> str | None:
    """The whole-call error code for a malformed PullSmsSendStatusByPhoneNumber, or None."""
    if not isinstance(payload, dict):
        return "FailedOperation.JsonParseFail"
    if not set(payload) <= PULL_FIELDS:
        return "UnknownParameter"  # the 2019-07-11 spellings (SmsSdkAppid, SendDateTime) among them
    if not PULL_FIELDS - {"EndTime"} <= set(payload):
        return "MissingParameter"
    begin, end = payload["BeginTime"], payload.get("EndTime", int(up.clock()))
    if not all(_whole(payload[name]) for name in ("BeginTime", "Offset", "Limit")) or not _whole(end):
        return "InvalidParameter"
    checks = [
        (begin >= up.clock() - PULL_WINDOW, "InvalidParameterValue.BeginTimeVerifyFail"),
        (end >= begin, "InvalidParameterValue.InvalidStartTime"),
        (1 <= payload["Limit"] <= PULL_LIMIT, "InvalidParameterValue.LimitVerifyFail"),
        (payload["Offset"] == 0, "InvalidParameterValue.OffsetVerifyFail"),  # "fixed at 0"
        (payload["SmsSdkAppId"] == up.sdk_app_id, "InvalidParameterValue.SdkAppIdNotExist"),
        (_E164.fullmatch(str(payload["PhoneNumber"])), "InvalidParameterValue.IncorrectPhoneNumber"),
    ]
    failed = next((code for passed, code in checks if not passed), None)
    return failed or up.number_codes.get(payload["PhoneNumber"])


def _pull_status(message: Sent, report: Report) -> dict[str, Any]:
    number = phonenumbers.parse(message.e164)
    return {
        "UserReceiveTime": int(message.at) + 3,
        "CountryCode": str(number.country_code),
        "SubscriberNumber": str(number.national_number),
        "PhoneNumber": message.e164,
        "SerialNo": message.carrier_id,
        "ReportStatus": "SUCCESS" if report.delivered else "FAIL",
        "Description": report.code or ("DELIVRD" if report.delivered else "UNDELIV"),
        "SessionContext": message.echo.get("SessionContext", ""),
    }


def _pull(payload: dict[str, Any], up: TencentUpstream) -> dict[str, Any]:
    """The number's reports sent from BeginTime to EndTime, oldest first, at most Limit of them."""
    begin, end = payload["BeginTime"], payload.get("EndTime", int(up.clock()))
    statuses = [
        _pull_status(message, report)
        for message in sorted(up.sent, key=lambda message: message.at)
        if message.e164 == payload["PhoneNumber"] and begin <= int(message.at) <= end
        if (report := up.report_of(message)) is not None
    ]
    return {"PullSmsSendStatusSet": statuses[: payload["Limit"]]}


Check = Callable[[Any, TencentUpstream], str | None]
Answer = Callable[[dict[str, Any], TencentUpstream], dict[str, Any]]
ACTIONS: dict[str, tuple[Check, Answer]] = {
    "SendSms": (_check_send, _send_sms),
    "PullSmsSendStatusByPhoneNumber": (_check_pull, _pull),
}


async def _handle(request: web.Request) -> web.StreamResponse:
    up = request.app[UPSTREAM]
    with up.answering():
        body, faulty = await up.receive(request)
        if faulty is not None:
            return faulty
        if (auth_error := _verify(request, body, up)) is not None:
            return _error(auth_error)
        action = ACTIONS.get(request.headers.get("X-TC-Action", ""))
        if action is None:
            return _error("InvalidAction")
        check, answer = action
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if (request_error := _check_headers(request) or check(payload, up) or up.error_code) is not None:
            return _error(request_error)
        return _answer(answer(payload, up))
