"""Our signers against the official SDKs' own signing code (carriers.md sections 3 and 4).

The same inputs are signed by ``plugins.*_signing`` and by the SDK functions carriers.md names:
the vectors T1 and A2, then inputs of our own (a non-ASCII SignName, several numbers,
parameters that need escaping, the UTC day boundary), and finally the requests the plugins really
put on the wire, received by the fake upstreams. The SDKs are test-only dependencies.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import orjson
import pytest
import tencentcloud.common.abstract_client as abstract_client
from alibabacloud_openapi_util.client import Client as AliyunUtil
from Tea.request import TeaRequest
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.credential import Credential
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.sign import Sign

from plugins.aliyun import signing as ours_aliyun
from plugins.tencent import signing as ours_tencent
from tests.fakes import aliyun as fake_aliyun
from tests.fakes import tencent as fake_tencent
from tests.fakes.cases import ALIYUN, TENCENT, Rig, mainland, make_batch
from tests.fakes.vectors import (
    A2_AUTHORIZATION,
    A2_HEADERS,
    A2_ID,
    A2_QUERY,
    A2_SECRET,
    A_TIMESTAMP,
    T1_AUTHORIZATION,
    T1_HOST,
    T1_ID,
    T1_KEY,
    T1_PARAMS,
    T1_TIMESTAMP,
)
from tests.test_tencent_plugin import t1_headers

# -- Tencent TC3 -----------------------------------------------------------------------------------
SPECIAL = ['a "quoted" \\ back/slash', "tab\tnew\r\nline", "&=+%?#~*", "😀 emoji", "", "<b>&amp;</b>"]
TC3_CASES = {
    "T1": (T1_TIMESTAMP, T1_PARAMS),
    "non-ascii sign name": (1700000000, {**T1_PARAMS, "SignName": "腾讯云", "TemplateParamSet": ["验证码"]}),
    "several numbers": (
        1700000000,
        {
            **T1_PARAMS,
            "SessionContext": "",
            "PhoneNumberSet": ["+8613800138000", "+8613900139000", "+8613700137000"],
        },
    ),
    "special params": (1700000000, {**T1_PARAMS, "TemplateParamSet": SPECIAL}),
    "last second of a UTC day": (1700006399, T1_PARAMS),  # 2023-11-15 07:59:59 in Beijing
    "first second of a UTC day": (1700006400, T1_PARAMS),
}


def tencent_client(secret_id: str = T1_ID, secret_key: str = T1_KEY) -> CommonClient:
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=T1_HOST))
    return CommonClient("sms", "2021-01-11", Credential(secret_id, secret_key), "ap-guangzhou", profile)


def sdk_date(timestamp: int) -> str:
    # What the SDK computes with datetime.utcfromtimestamp (deprecated from Python 3.12 on).
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def signature_of(authorization: str) -> str:
    return authorization.rpartition("Signature=")[2]


@pytest.mark.parametrize(("timestamp", "params"), TC3_CASES.values(), ids=TC3_CASES.keys())
def test_tc3_headers_equal_the_sdk_end_to_end(monkeypatch, timestamp, params):
    # _build_req_with_tc3_signature reads int(time.time()): its module's clock is frozen.
    monkeypatch.setattr(abstract_client, "time", SimpleNamespace(time=lambda: timestamp))
    request = RequestInternal(T1_HOST, "POST", "/")
    tencent_client()._build_req_with_tc3_signature("SendSms", params, request)
    ours = t1_headers(request.data.encode(), timestamp)
    assert ours == {name: request.header[name] for name in ours}
    if params is T1_PARAMS and timestamp == T1_TIMESTAMP:
        assert ours["Authorization"] == T1_AUTHORIZATION


@pytest.mark.parametrize(("timestamp", "params"), TC3_CASES.values(), ids=TC3_CASES.keys())
def test_tc3_signature_of_the_plugins_utf8_body_equals_the_sdk(timestamp, params):
    # The plugin sends orjson's compact UTF-8, not the SDK's ASCII-escaped json.dumps: any bytes
    # do, as long as the hash is over the bytes sent.
    body = orjson.dumps(params)
    header = {"Content-Type": "application/json", "Host": T1_HOST, "X-TC-Timestamp": str(timestamp)}
    request = RequestInternal(T1_HOST, "POST", "/", header, body)
    expected = tencent_client()._get_tc3_signature(None, request, sdk_date(timestamp), "sms", T1_KEY)
    authorization = ours_tencent.authorization(
        secret_id=T1_ID, secret_key=T1_KEY, timestamp=timestamp, host=T1_HOST, body=body
    )
    assert signature_of(authorization) == expected
    assert f"/{sdk_date(timestamp)}/sms/tc3_request," in authorization


@pytest.mark.parametrize(
    "to_sign", ["TC3-HMAC-SHA256\n1700000000\n2023-11-14/sms/tc3_request\nab", "", "非 ASCII\n\t&"]
)
def test_tc3_key_derivation_equals_sign_tc3(to_sign):
    assert ours_tencent.sign(T1_KEY, "2023-11-14", "sms", to_sign) == Sign.sign_tc3(
        T1_KEY, "2023-11-14", "sms", to_sign
    )


# -- Aliyun V3 (ACS3-HMAC-SHA256) ------------------------------------------------------------------
TEMPLATE_PARAM = json.dumps(
    {"name": "O'Brien & Co. 100% +1", "url": "/?a=b#c~*", "nl": "a\r\nb", "emoji": "😀", "zh": "验证码"},
    ensure_ascii=False,
)
MANY = {**A2_QUERY, "PhoneNumbers": ",".join(f"13800138{i:03d}" for i in range(300))}
V3_CASES = {  # (query, form body): a long query goes in a form body, as the plugin does
    "A2": (A2_QUERY, False),
    "several numbers": ({**A2_QUERY, "PhoneNumbers": "13800138000,13900139000,85212345678"}, False),
    "special params": (
        {**A2_QUERY, "SignName": "阿里 云*~", "TemplateParam": TEMPLATE_PARAM, "OutId": "a b+c"},
        False,
    ),
    "form body": (MANY, True),
}


def sdk_authorization(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes, ak: str, secret: str
) -> str:
    request = TeaRequest()
    request.method, request.pathname, request.query, request.headers = method, path, query, headers
    payload = AliyunUtil.hex_encode(AliyunUtil.hash(body, "ACS3-HMAC-SHA256"))
    return AliyunUtil.get_authorization(request, "ACS3-HMAC-SHA256", payload, ak, secret)


@pytest.mark.parametrize(("query", "form"), V3_CASES.values(), ids=V3_CASES.keys())
def test_acs3_authorization_equals_the_sdk(query, form):
    body = ours_aliyun.canonical_query(query).encode() if form else b""
    sent_query = {} if form else query
    headers = ours_aliyun.acs3_headers(
        method="POST",
        host="dysmsapi.aliyuncs.com",
        path="/",
        query=sent_query,
        body=body,
        action="SendSms",
        version="2017-05-25",
        timestamp=A_TIMESTAMP,
        nonce="3156853299f313e23d1673dc12e1703d",
        access_key_id=A2_ID,
        access_key_secret=A2_SECRET,
        content_type="application/x-www-form-urlencoded" if form else None,
    )
    authorization = headers.pop("Authorization")
    assert authorization == sdk_authorization("POST", "/", sent_query, headers, body, A2_ID, A2_SECRET)
    if query is A2_QUERY:
        assert headers == A2_HEADERS
        assert authorization == A2_AUTHORIZATION


# -- what the plugins really send ------------------------------------------------------------------
async def test_the_tencent_plugins_request_on_the_wire_is_signed_as_the_sdk_signs(aiohttp_server, session):
    rig = await Rig.start(TENCENT, aiohttp_server, session, timeout=5.0, sign_name="腾讯云")
    outcomes = await rig.carrier.send(
        make_batch(
            "+8613800138000",
            "+8613900139000",
            template_id="1110",
            params={"code": SPECIAL[0], "x": SPECIAL[2]},
        )
    )
    assert all(outcome.accepted for outcome in outcomes)
    [sent] = rig.upstream.requests
    stamp = int(sent.headers["X-TC-Timestamp"])
    names = ("Content-Type", "Host", "X-TC-Timestamp")
    request = RequestInternal(
        sent.headers["Host"], sent.method, sent.path, {name: sent.headers[name] for name in names}, sent.body
    )
    signature = tencent_client()._get_tc3_signature(
        None, request, sdk_date(stamp), "sms", fake_tencent.SECRET_KEY
    )
    assert sent.headers["Authorization"] == (
        f"TC3-HMAC-SHA256 Credential={fake_tencent.SECRET_ID}/{sdk_date(stamp)}/sms/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


@pytest.mark.parametrize("count", [2, 400], ids=["in the query", "in a form body"])
async def test_the_aliyun_plugins_request_on_the_wire_is_signed_as_the_sdk_signs(
    aiohttp_server, session, count
):
    rig = await Rig.start(ALIYUN, aiohttp_server, session, timeout=5.0, sign_name="阿里 云*~")
    outcomes = await rig.carrier.send(
        make_batch(
            *mainland(count), template_id="1110", params={"name": "O'Brien & Co. 100% +1", "code": "😀/?#"}
        )
    )
    assert all(outcome.accepted for outcome in outcomes)
    [sent] = rig.upstream.requests
    assert bool(sent.body) is (count == 400)
    signed = sent.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    } <= set(signed)
    if sent.body:
        assert "content-type" in signed
    assert sent.headers["x-acs-content-sha256"] == hashlib.sha256(sent.body).hexdigest()
    assert sent.headers["Authorization"] == sdk_authorization(
        sent.method,
        sent.path,
        sent.query,
        {name: sent.headers[name] for name in signed},
        sent.body,
        fake_aliyun.ACCESS_KEY_ID,
        fake_aliyun.ACCESS_KEY_SECRET,
    )
