"""Aliyun's error codes, each with whose fault it is (documented code by code in docs/carriers.md)."""

from __future__ import annotations

from gateway.carriers.base import ErrorCodes

__all__ = ["ERRORS", "NUMBER_CODES", "classify"]

#: Aliyun error code -> whose fault it is; documented code by code in docs/carriers.md.
ERRORS = ErrorCodes(
    # the number or the caller's parameter values: the caller's 400
    caller=(
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.INVALID_JSON_PARAM",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.SMS_CONTENT_ILLEGAL",
    ),
    # per number and signature: 1/min, 5/h, 10/day by default: the caller's 429
    rate_limited=("isv.BUSINESS_LIMIT_CONTROL",),
    # our account throttled or its quota reached, Aliyun in trouble: later or elsewhere may work
    retryable=(
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "isv.DAY_LIMIT_CONTROL",
        "isv.MONTH_LIMIT_CONTROL",
        "isp.SYSTEM_ERROR",
        "InternalError",
        "ServiceUnavailable",
        "SignatureNonceUsed",
    ),
    # credentials, clock, balance, sign/template approval, our own request: fix the config
    permanent=(
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "Forbidden.RAM",
        "isp.RAM_PERMISSION_DENY",
        "InvalidTimeStamp.Expired",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
        "isv.PRODUCT_UN_SUBSCRIPT",
        "isv.PRODUCT_UNSUBSCRIBE",
        "isv.DENY_IP_RANGE",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.SIGN_STATE_ILLEGAL",
        "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
        "isv.EXTEND_CODE_ERROR",
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.INVALID_PARAMETERS",
        "MissingPhoneNumbers",
        "MissingSignName",
        "MissingTemplateCode",
        "MissingPhoneNumber",
        "MissingSendDate",
        "MissingPageSize",
        "MissingCurrentPage",
    ),
)
#: Codes caused by one number of a call: a call of several is then resent number by number.
NUMBER_CODES = frozenset(
    {"isv.MOBILE_NUMBER_ILLEGAL", "isv.BUSINESS_LIMIT_CONTROL", "isv.DOMESTIC_NUMBER_NOT_SUPPORTED"}
)

#: Whose fault a code is (unknown codes are permanent).
classify = ERRORS.classify
