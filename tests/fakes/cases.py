"""Every carrier this package registers, with what the contract suite needs to run it.

``CASES`` is the table ``tests/test_carrier_contract.py`` runs every test over (as limits runs each
test over every storage): the mock, and each carrier that speaks to an upstream with its fake and
what that fake answers to what. A new carrier adds its case here and its fake beside this module;
the suite fails while a registered carrier has no case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.carriers.base import Carrier, FailureKind, Recipient, SendBatch
from gateway.carriers.registry import carrier_class
from gateway.config.loader import parse_section
from gateway.config.model import BackendConfig
from plugins.aliyun import errors as aliyun_errors
from plugins.tencent import errors as tencent_errors
from tests.fakes import Upstream
from tests.fakes import aliyun as fake_aliyun
from tests.fakes import tencent as fake_tencent

__all__ = ["ALIYUN", "CASES", "MOCK", "TENCENT", "CarrierCase", "Remote", "Rig", "mainland", "make_batch"]


@dataclass(frozen=True)
class Remote:
    """A carrier that speaks to an upstream: its fake, and what the fake answers to what."""

    upstream: Callable[[], Upstream]  # the fake's state, fresh for each test
    app: Callable[[Any], web.Application]  # the fake's aiohttp app for that state
    default_endpoint: str
    secret: str  # the option holding our secret: never in a repr or a log line
    wrong_credentials: Mapping[str, str]  # credential option -> the code when it is wrong
    stale: tuple[float, str]  # upstream clock offset that makes our timestamp stale, and its code
    call_errors: Sequence[tuple[str, FailureKind]]  # whole-call codes, with the kind each must be
    errors: Mapping[str, FailureKind]  # the plugin's table of codes ...
    classify: Callable[[str], FailureKind]  # ... its classifier ...
    doc_heading: str  # ... and the docs/carriers.md section that lists the same table
    number_refusal: str  # the code the fake gives one bad number ...
    log_line: str  # ... and what the plugin logs about a call of two with that number in it


@dataclass(frozen=True)
class CarrierCase:
    name: str  # its entry-point name in smsedge.providers
    options: Mapping[str, Any]  # valid options; a remote's endpoint is added when its fake starts
    remote: Remote | None = None

    @property
    def path(self) -> str:
        return f"providers.backends.{self.name}"

    def read_options(self, options: Mapping[str, Any]) -> Any:
        """What the carrier's Options make of ``options``, as the core reads them."""
        return parse_section(options, carrier_class(self.name).Options, self.path)

    def build(
        self,
        session: aiohttp.ClientSession,
        endpoint: str | None = None,
        timeout: float = 2.0,
        **overrides: Any,
    ) -> Carrier[Any]:
        """The carrier as the core builds it: found by its entry point, its Options read."""
        options = {**self.options, **({"endpoint": endpoint} if endpoint else {}), **overrides}
        cls = carrier_class(self.name)
        parsed = parse_section(options, cls.Options, self.path)
        backend = BackendConfig(
            name=self.name,
            plugin=self.name,
            price_milli=45,
            timeout=timeout,
            retries=1,
            receipts=False,
            callback_token="",
            options=parsed,
        )
        return cls(backend, session)


@dataclass(frozen=True)
class Rig:
    """A carrier under test, its fake's state (None for the mock) and the fake's server."""

    carrier: Carrier[Any]
    upstream: Any
    server: TestServer | None

    @classmethod
    async def start(
        cls, case: CarrierCase, aiohttp_server: Any, session: aiohttp.ClientSession, **overrides: Any
    ) -> Rig:
        if case.remote is None:
            return cls(case.build(session, **overrides), None, None)
        upstream = case.remote.upstream()
        server = await aiohttp_server(case.remote.app(upstream))
        return cls(case.build(session, str(server.make_url("/")), **overrides), upstream, server)


def make_batch(
    *phones: str,
    template_id: str = "SMS_1",
    params: Mapping[str, str] | None = None,
    param_order: tuple[str, ...] = (),
) -> SendBatch:
    return SendBatch(
        template_id=template_id,
        params={"code": "1234"} if params is None else params,
        param_order=param_order,
        recipients=[Recipient(phone, f"msg-{i}") for i, phone in enumerate(phones)],
    )


def mainland(count: int, prefix: str = "+86138") -> list[str]:
    return [f"{prefix}{i:08d}" for i in range(count)]


MOCK = CarrierCase("mock", {})

TENCENT = CarrierCase(
    "tencent",
    {
        "region": "ap-guangzhou",
        "secret_id": fake_tencent.SECRET_ID,
        "secret_key": fake_tencent.SECRET_KEY,
        "sdk_app_id": fake_tencent.SDK_APP_ID,
        "sign_name": "SMS Edge",
    },
    Remote(
        upstream=fake_tencent.TencentUpstream,
        app=fake_tencent.create_app,
        default_endpoint="https://sms.tencentcloudapi.com",
        secret="secret_key",
        wrong_credentials={
            "secret_key": "AuthFailure.SignatureFailure",
            "secret_id": "AuthFailure.SecretIdNotFound",
        },
        stale=(+301, "AuthFailure.SignatureExpire"),
        call_errors=[
            ("RequestLimitExceeded", FailureKind.RETRYABLE),
            ("InternalError.Timeout", FailureKind.RETRYABLE),
            ("LimitExceeded.AppDailyLimit", FailureKind.RETRYABLE),
            ("FailedOperation.InsufficientBalanceInSmsPackage", FailureKind.PERMANENT),
            ("FailedOperation.TemplateIncorrectOrUnapproved", FailureKind.PERMANENT),
            ("FailedOperation.SignatureIncorrectOrUnapproved", FailureKind.PERMANENT),
            ("InvalidParameterValue.TemplateParameterFormatError", FailureKind.CALLER),
            ("LimitExceeded.PhoneNumberDailyLimit", FailureKind.RATE_LIMITED),
            ("FailedOperation.SomethingNew", FailureKind.PERMANENT),
        ],
        errors=tencent_errors.ERRORS,
        classify=tencent_errors.classify,
        doc_heading="## Tencent error codes",
        number_refusal="InvalidParameterValue.IncorrectPhoneNumber",
        log_line="tencent SendSms: 2 numbers",
    ),
)

ALIYUN = CarrierCase(
    "aliyun",
    {
        "access_key_id": fake_aliyun.ACCESS_KEY_ID,
        "access_key_secret": fake_aliyun.ACCESS_KEY_SECRET,
        "sign_name": "SMS Edge",
    },
    Remote(
        upstream=fake_aliyun.AliyunUpstream,
        app=fake_aliyun.create_app,
        default_endpoint="https://dysmsapi.aliyuncs.com",
        secret="access_key_secret",
        wrong_credentials={
            "access_key_secret": "SignatureDoesNotMatch",
            "access_key_id": "InvalidAccessKeyId.NotFound",
        },
        stale=(-901, "InvalidTimeStamp.Expired"),
        call_errors=[
            ("Throttling.User", FailureKind.RETRYABLE),  # HTTP 400
            ("InternalError", FailureKind.RETRYABLE),  # HTTP 500
            ("ServiceUnavailable", FailureKind.RETRYABLE),  # HTTP 503
            ("isp.SYSTEM_ERROR", FailureKind.RETRYABLE),
            ("isv.DAY_LIMIT_CONTROL", FailureKind.RETRYABLE),
            ("isv.TEMPLATE_MISSING_PARAMETERS", FailureKind.CALLER),
            ("isv.MOBILE_NUMBER_ILLEGAL", FailureKind.CALLER),
            ("isv.BUSINESS_LIMIT_CONTROL", FailureKind.RATE_LIMITED),
            ("isv.SMS_TEMPLATE_ILLEGAL", FailureKind.PERMANENT),
            ("isv.OUT_OF_SERVICE", FailureKind.PERMANENT),
            ("isv.SOMETHING_NEW", FailureKind.PERMANENT),
        ],
        errors=aliyun_errors.ERRORS,
        classify=aliyun_errors.classify,
        doc_heading="## Aliyun error codes",
        number_refusal="isv.MOBILE_NUMBER_ILLEGAL",
        log_line="aliyun isv.MOBILE_NUMBER_ILLEGAL on a call of 2 numbers: resending one by one",
    ),
)

#: every carrier of this package's smsedge.providers entry points, with its fake if it has one
CASES = [MOCK, TENCENT, ALIYUN]
