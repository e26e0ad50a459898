"""The signing vectors of carriers.md section 4, computed with the vendors' own SDKs.

One copy, checked three ways: against our signers (tests/test_tencent_plugin.py,
tests/test_aliyun_plugin.py), against the SDKs' signing code (tests/test_signing_sdk.py), and
against the fakes' independent verifiers.
"""

from __future__ import annotations

__all__ = [
    "A2_AUTHORIZATION",
    "A2_HEADERS",
    "A2_ID",
    "A2_QUERY",
    "A2_SECRET",
    "A_TIMESTAMP",
    "T1_AUTHORIZATION",
    "T1_BODY",
    "T1_BODY_SHA256",
    "T1_HOST",
    "T1_ID",
    "T1_KEY",
    "T1_PARAMS",
    "T1_SIGNATURE",
    "T1_STRING_TO_SIGN",
    "T1_TIMESTAMP",
]

# -- T1: Tencent TC3-HMAC-SHA256, computed with tencentcloud-sdk-python-common ---------------------
T1_ID = "AKIDEXAMPLEsecretid0000000000000000"
T1_KEY = "EXAMPLEsecretKey0000000000000000"
T1_TIMESTAMP = 1700000000
T1_HOST = "sms.tencentcloudapi.com"
T1_PARAMS = {
    "PhoneNumberSet": ["+8613800138000"],
    "SmsSdkAppId": "1400006666",
    "SignName": "Acme",
    "TemplateId": "1110",
    "TemplateParamSet": ["4370", "5"],
    "SessionContext": "msg-1",
}
T1_BODY = (  # T1_PARAMS as the SDK's json.dumps writes them
    b'{"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666", "SignName": "Acme", '
    b'"TemplateId": "1110", "TemplateParamSet": ["4370", "5"], "SessionContext": "msg-1"}'
)
T1_BODY_SHA256 = "3e920144f0e1c866d8db4de66b38e96a4e6a5e8e4882cab91885bd82296ce6f2"
T1_STRING_TO_SIGN = (
    "TC3-HMAC-SHA256\n1700000000\n2023-11-14/sms/tc3_request\n"
    "9678baeafe3dbed6f16867dd50ad7649e9755b819655c0d64d4e2b2195d4fe13"
)
T1_SIGNATURE = "44072775ba1ac2b3f1b69930864cb0cbcccb206933afeea7fdeb981d618c74e6"
T1_AUTHORIZATION = (
    f"TC3-HMAC-SHA256 Credential={T1_ID}/2023-11-14/sms/tc3_request, "
    f"SignedHeaders=content-type;host, Signature={T1_SIGNATURE}"
)

# -- A2: Aliyun V3 ACS3-HMAC-SHA256 ----------------------------------------------------------------
A_TIMESTAMP = 1700000000  # 2023-11-14T22:13:20Z
A2_ID, A2_SECRET = "YourAccessKeyId", "YourAccessKeySecret"
A2_QUERY = {
    "PhoneNumbers": "13800138000",
    "SignName": "阿里云",
    "TemplateCode": "SMS_154950909",
    "TemplateParam": '{"code":"1234"}',
}
A2_HEADERS = {
    "host": "dysmsapi.aliyuncs.com",
    "x-acs-action": "SendSms",
    "x-acs-version": "2017-05-25",
    "x-acs-date": "2023-11-14T22:13:20Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # b""
}
A2_AUTHORIZATION = (
    f"ACS3-HMAC-SHA256 Credential={A2_ID},SignedHeaders=host;x-acs-action;"
    "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
    "Signature=61fd54bf53c6e817fac643e87dc94cad0be9de9c58c848ac55a254c5066556ed"
)
