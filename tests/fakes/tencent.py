"""A fake Tencent Cloud SMS upstream (API 3.0 ``SendSms`` 2021-01-11).

It re-implements TC3-HMAC-SHA256 verification on its own (not with the plugin's signer), from the
received method, path, headers and raw body, so a signing bug cannot hide behind itself. Answers
have Tencent's shapes: HTTP 200 with ``Response.Error`` for whole-call errors, and one
``SendStatusSet`` entry per number otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import Upstream

__all__ = ["CREDENTIALS", "SDK_APP_ID", "SECRET_ID", "SECRET_KEY", "TencentUpstream", "create_app"]

SECRET_ID = "AKIDfakeSecretId000000000000000000"
SECRET_KEY = "fakeSecretKey0000000000000000000"
SDK_APP_ID = "1400006666"
CREDENTIALS = {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "sdk_app_id": SDK_APP_ID}  # what it accepts
MAX_SKEW = 300  # seconds: AuthFailure.SignatureExpire beyond five minutes

MESSAGES = {
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
    """The fake's state: credentials, and the shared switches (``number_codes``: SendStatusSet)."""

    secret_id: str = SECRET_ID
    secret_key: str = SECRET_KEY
    sdk_app_id: str = SDK_APP_ID
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


UPSTREAM = web.AppKey("tencent_upstream", TencentUpstream)


def create_app(upstream: TencentUpstream) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream
    app.router.add_post("/", _send_sms)
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


def _check(request: web.Request, payload: Any, up: TencentUpstream) -> str | None:
    """The whole-call error code for a malformed SendSms, or None."""
    if request.headers.get("X-TC-Action") != "SendSms":
        return "InvalidAction"
    if request.headers.get("X-TC-Version") != "2021-01-11":
        return "NoSuchVersion"
    if request.headers.get("X-TC-Region") not in ("ap-guangzhou", "ap-beijing", "ap-nanjing"):
        return "UnsupportedRegion"
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
        status.update(SerialNo=serial, Fee=1, Code="Ok", Message="send success")
    return status


async def _send_sms(request: web.Request) -> web.StreamResponse:
    up = request.app[UPSTREAM]
    body, faulty = await up.receive(request)
    if faulty is not None:
        return faulty
    if (auth_error := _verify(request, body, up)) is not None:
        return _error(auth_error)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if (request_error := _check(request, payload, up) or up.error_code) is not None:
        return _error(request_error)
    statuses = [_status(phone, payload, up) for phone in payload["PhoneNumberSet"]]
    return _answer({"SendStatusSet": statuses})
