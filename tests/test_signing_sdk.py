"""Our signers against the official SDKs' own signing code (carriers.md sections 3 and 4).

The same inputs are signed by ``plugins.*_signing`` and by the SDK functions carriers.md names:
the vectors T1, A1 and A2, then inputs of our own (a non-ASCII SignName, several numbers,
parameters that need escaping, the UTC day boundary), and finally the requests the plugins really
put on the wire, received by the fake upstreams. The SDKs are test-only dependencies.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
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

from gateway.carriers.base import Recipient, SendBatch
from gateway.config.model import BackendConfig
from gateway.config.reader import Reader
from plugins.aliyun import AliyunCarrier
from plugins.aliyun import signing as ours_aliyun
from plugins.tencent import TencentCarrier
from plugins.tencent import signing as ours_tencent
from tests.fakes import aliyun as fake_aliyun
from tests.fakes import tencent as fake_tencent

# -- Tencent TC3 -----------------------------------------------------------------------------------
T1_ID, T1_KEY = "AKIDEXAMPLEsecretid0000000000000000", "EXAMPLEsecretKey0000000000000000"
T1_HOST = "sms.tencentcloudapi.com"
T1_PARAMS = {"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666", "SignName": "Acme",
             "TemplateId": "1110", "TemplateParamSet": ["4370", "5"], "SessionContext": "msg-1"}
T1_AUTHORIZATION = (
    f"TC3-HMAC-SHA256 Credential={T1_ID}/2023-11-14/sms/tc3_request, SignedHeaders=content-type;host, "
    "Signature=44072775ba1ac2b3f1b69930864cb0cbcccb206933afeea7fdeb981d618c74e6"
)
SPECIAL = ['a "quoted" \\ back/slash', "tab\tnew\r\nline", "&=+%?#~*", "😀 emoji", "", "<b>&amp;</b>"]
TC3_CASES = {
    "T1": (1700000000, T1_PARAMS),
    "non-ascii sign name": (1700000000, {**T1_PARAMS, "SignName": "腾讯云", "TemplateParamSet": ["验证码"]}),
    "several numbers": (1700000000, {**T1_PARAMS, "SessionContext": "",
                                     "PhoneNumberSet": ["+8613800138000", "+8613900139000",
                                                        "+8613700137000"]}),
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
    ours = ours_tencent.request_headers(
        action="SendSms", version="2021-01-11", region="ap-guangzhou", secret_id=T1_ID,
        secret_key=T1_KEY, host=T1_HOST, body=request.data.encode(), timestamp=timestamp,
    )
    assert ours == {name: request.header[name] for name in ours}
    if params is T1_PARAMS and timestamp == 1700000000:
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
        secret_id=T1_ID, secret_key=T1_KEY, timestamp=timestamp, host=T1_HOST, body=body)
    assert signature_of(authorization) == expected
    assert f"/{sdk_date(timestamp)}/sms/tc3_request," in authorization


@pytest.mark.parametrize("to_sign", ["TC3-HMAC-SHA256\n1700000000\n2023-11-14/sms/tc3_request\nab",
                                     "", "非 ASCII\n\t&"])
def test_tc3_key_derivation_equals_sign_tc3(to_sign):
    assert ours_tencent.sign(T1_KEY, "2023-11-14", "sms", to_sign) == Sign.sign_tc3(
        T1_KEY, "2023-11-14", "sms", to_sign)


# -- Aliyun V1 (RPC, HMAC-SHA1) --------------------------------------------------------------------
A1_PARAMS = {
    "AccessKeyId": "testid", "Action": "SendSms", "Format": "JSON", "RegionId": "cn-hangzhou",
    "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0", "Timestamp": "2023-11-14T22:13:20Z", "Version": "2017-05-25",
    "PhoneNumbers": "13800138000,13900139000", "SignName": "阿里云 短信*测试~",
    "TemplateCode": "SMS_154950909", "TemplateParam": '{"code":"1234"}', "OutId": "out-1",
}
A1_SIGNATURES = {"GET": "wTTfu29316KOdXXYedRcPRvxc3U=", "POST": "R6PCTGw9HO30oBjUdMgUBc4d1Mc="}
TEMPLATE_PARAM = json.dumps({"name": "O'Brien & Co. 100% +1", "url": "/?a=b#c~*", "nl": "a\r\nb",
                             "emoji": "😀", "zh": "验证码"}, ensure_ascii=False)
V1_CASES = {
    "A1": A1_PARAMS,
    "non-ascii sign name": {**A1_PARAMS, "SignName": "阿里云"},
    "several numbers": {**A1_PARAMS, "PhoneNumbers": ",".join(f"1380013800{i}" for i in range(10))},
    "special params": {**A1_PARAMS, "TemplateParam": TEMPLATE_PARAM},
    "aliyunsdkcore's empty SignatureType": {**A1_PARAMS, "SignatureType": ""},
}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("params", V1_CASES.values(), ids=V1_CASES.keys())
def test_rpc_signature_equals_the_sdk(params, method):
    expected = AliyunUtil.get_rpcsignature(params, method, "testsecret")
    assert ours_aliyun.rpc_signature(params, method, "testsecret") == expected
    # ``Signature`` itself is never signed: a request that already carries one signs the same.
    assert ours_aliyun.rpc_signature({**params, "Signature": expected}, method, "testsecret") == expected
    if params is A1_PARAMS:
        assert expected == A1_SIGNATURES[method]


# -- Aliyun V3 (ACS3-HMAC-SHA256) ------------------------------------------------------------------
A2_QUERY = {"PhoneNumbers": "13800138000", "SignName": "阿里云", "TemplateCode": "SMS_154950909",
            "TemplateParam": '{"code":"1234"}'}
A2_HEADERS = {
    "host": "dysmsapi.aliyuncs.com", "x-acs-action": "SendSms", "x-acs-version": "2017-05-25",
    "x-acs-date": "2023-11-14T22:13:20Z", "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
}
A2_AUTHORIZATION = (
    "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;"
    "x-acs-date;x-acs-signature-nonce;x-acs-version,"
    "Signature=61fd54bf53c6e817fac643e87dc94cad0be9de9c58c848ac55a254c5066556ed"
)
MANY = {**A2_QUERY, "PhoneNumbers": ",".join(f"13800138{i:03d}" for i in range(300))}
V3_CASES = {  # (query, form body): a long query goes in a form body, as the plugin does
    "A2": (A2_QUERY, False),
    "several numbers": ({**A2_QUERY, "PhoneNumbers": "13800138000,13900139000,85212345678"}, False),
    "special params": ({**A2_QUERY, "SignName": "阿里 云*~", "TemplateParam": TEMPLATE_PARAM,
                        "OutId": "a b+c"}, False),
    "form body": (MANY, True),
}


def sdk_authorization(method: str, path: str, query: dict[str, str], headers: dict[str, str],
                      body: bytes, ak: str, secret: str) -> str:
    request = TeaRequest()
    request.method, request.pathname, request.query, request.headers = method, path, query, headers
    payload = AliyunUtil.hex_encode(AliyunUtil.hash(body, "ACS3-HMAC-SHA256"))
    return AliyunUtil.get_authorization(request, "ACS3-HMAC-SHA256", payload, ak, secret)


@pytest.mark.parametrize(("query", "form"), V3_CASES.values(), ids=V3_CASES.keys())
def test_acs3_authorization_equals_the_sdk(query, form):
    body = ours_aliyun.canonical_query(query).encode() if form else b""
    sent_query = {} if form else query
    headers = ours_aliyun.acs3_headers(
        method="POST", host="dysmsapi.aliyuncs.com", path="/", query=sent_query, body=body,
        action="SendSms", version="2017-05-25", timestamp=1700000000,
        nonce="3156853299f313e23d1673dc12e1703d", access_key_id="YourAccessKeyId",
        access_key_secret="YourAccessKeySecret",
        content_type="application/x-www-form-urlencoded" if form else None,
    )
    authorization = headers.pop("Authorization")
    assert authorization == sdk_authorization(
        "POST", "/", sent_query, headers, body, "YourAccessKeyId", "YourAccessKeySecret")
    if query is A2_QUERY:
        assert headers == A2_HEADERS
        assert authorization == A2_AUTHORIZATION


# -- what the plugins really send ------------------------------------------------------------------
def backend(name: str, options: Any) -> BackendConfig:
    return BackendConfig(name=name, plugin=name, price_milli=10, timeout=5.0, retries=0,
                         receipts=False, callback_token="", options=options)


def batch(phones: list[str], params: dict[str, str]) -> SendBatch:
    return SendBatch(template_id="1110", params=params, param_order=(),
                     recipients=[Recipient(phone, f"msg-{i}") for i, phone in enumerate(phones)])


async def test_the_tencent_plugins_request_on_the_wire_is_signed_as_the_sdk_signs(aiohttp_server):
    upstream = fake_tencent.TencentUpstream()
    server = await aiohttp_server(fake_tencent.create_app(upstream))
    options = TencentCarrier.read_options(Reader({
        "endpoint": str(server.make_url("/")), "secret_id": fake_tencent.SECRET_ID,
        "secret_key": fake_tencent.SECRET_KEY, "sdk_app_id": fake_tencent.SDK_APP_ID,
        "sign_name": "腾讯云"}))
    async with aiohttp.ClientSession() as session:
        outcomes = await TencentCarrier(backend("tencent", options), session).send(
            batch(["+8613800138000", "+8613900139000"], {"code": SPECIAL[0], "x": SPECIAL[2]}))
    assert all(outcome.accepted for outcome in outcomes)
    [sent] = upstream.requests
    stamp = int(sent.headers["X-TC-Timestamp"])
    names = ("Content-Type", "Host", "X-TC-Timestamp")
    request = RequestInternal(sent.headers["Host"], sent.method, sent.path,
                              {name: sent.headers[name] for name in names}, sent.body)
    signature = tencent_client()._get_tc3_signature(
        None, request, sdk_date(stamp), "sms", fake_tencent.SECRET_KEY)
    assert sent.headers["Authorization"] == (
        f"TC3-HMAC-SHA256 Credential={fake_tencent.SECRET_ID}/{sdk_date(stamp)}/sms/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}")


@pytest.mark.parametrize("count", [2, 400], ids=["in the query", "in a form body"])
async def test_the_aliyun_plugins_request_on_the_wire_is_signed_as_the_sdk_signs(aiohttp_server,
                                                                                 count):
    upstream = fake_aliyun.AliyunUpstream()
    server = await aiohttp_server(fake_aliyun.create_app(upstream))
    options = AliyunCarrier.read_options(Reader({
        "endpoint": str(server.make_url("/")), "access_key_id": fake_aliyun.ACCESS_KEY_ID,
        "access_key_secret": fake_aliyun.ACCESS_KEY_SECRET, "sign_name": "阿里 云*~"}))
    phones = [f"+86138{i:08d}" for i in range(count)]
    async with aiohttp.ClientSession() as session:
        outcomes = await AliyunCarrier(backend("aliyun", options), session).send(
            batch(phones, {"name": "O'Brien & Co. 100% +1", "code": "😀/?#"}))
    assert all(outcome.accepted for outcome in outcomes)
    [sent] = upstream.requests
    assert bool(sent.body) is (count == 400)
    signed = sent.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce",
            "x-acs-version"} <= set(signed)
    if sent.body:
        assert "content-type" in signed
    assert sent.headers["x-acs-content-sha256"] == hashlib.sha256(sent.body).hexdigest()
    assert sent.headers["Authorization"] == sdk_authorization(
        sent.method, sent.path, sent.query, {name: sent.headers[name] for name in signed}, sent.body,
        fake_aliyun.ACCESS_KEY_ID, fake_aliyun.ACCESS_KEY_SECRET)
