"""Tencent's error codes, each with whose fault it is (documented code by code in docs/carriers.md)."""

from __future__ import annotations

from gateway.carriers.base import ErrorCodes

__all__ = ["ERRORS", "classify"]

#: Tencent error code -> whose fault it is; documented code by code in docs/carriers.md.
#: Each code may come as ``Response.Error`` or as one number's ``SendStatusSet[].Code``; the
#: ``...VerifyFail`` and ``InvalidStartTime`` codes answer the status query (``status``).
ERRORS = ErrorCodes(
    # the number or the caller's parameter values: the caller's 400
    caller=(
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.PhoneNumberOnBlacklist",
        "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
        "InvalidParameterValue.TemplateParameterFormatError",
        "InvalidParameterValue.TemplateParameterLengthLimit",
        "InvalidParameterValue.ContentLengthLimit",
        "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
        "FailedOperation.ContainSensitiveWord",
        "InvalidParameter.DirtyWordFound",
    ),
    # Tencent's per-number frequency limits: the caller's 429
    rate_limited=(
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "LimitExceeded.DeliveryFrequencyLimit",
    ),
    # our account throttled, Tencent in trouble, or a time window: later or elsewhere may work
    retryable=(
        "RequestLimitExceeded",
        "RequestLimitExceeded.UinLimitExceeded",
        "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
        "RequestLimitExceeded.IPLimitExceeded",
        "InternalError",
        "InternalError.Timeout",
        "InternalError.SendAndRecvFail",
        "InternalError.OtherError",
        "InternalError.UnknownError",
        "ResourceUnavailable",
        "LimitExceeded.AppDailyLimit",
        "LimitExceeded.DailyLimit",
        "FailedOperation.MarketingSendTimeConstraint",
    ),
    # credentials, clock, balance, sign/template approval, our own request: fix the config
    permanent=(
        "AuthFailure.SignatureFailure",
        "AuthFailure.SignatureExpire",
        "AuthFailure.SecretIdNotFound",
        "AuthFailure.InvalidSecretId",
        "AuthFailure.InvalidAuthorization",
        "AuthFailure.UnauthorizedOperation",
        "AuthFailure.TokenFailure",
        "AuthFailure.MFAFailure",
        "InternalError.RequestTimeException",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "UnauthorizedOperation.SerivceSuspendDueToArrears",
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.MissingTemplateList",
        "FailedOperation.MissingSignatureList",
        "FailedOperation.MissingSignature",
        "InvalidParameterValue.SdkAppIdNotExist",
        "InvalidParameter.AppidAndBizId",
        "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
        "UnauthorizedOperation.SdkAppIdIsDisabled",
        "UnauthorizedOperation.RequestIpNotInWhitelist",
        "UnauthorizedOperation.RequestPermissionDeny",
        "UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny",
        "UnsupportedOperation.UnsuportedRegion",
        "LimitExceeded.PhoneNumberCountLimit",
        "MissingParameter",
        "MissingParameter.EmptyPhoneNumberSet",
        "InvalidParameter",
        "InvalidParameter.InvalidParameters",
        "InvalidParameterValue.BeginTimeVerifyFail",
        "InvalidParameterValue.EndTimeVerifyFail",
        "InvalidParameterValue.InvalidStartTime",
        "InvalidParameterValue.LimitVerifyFail",
        "InvalidParameterValue.OffsetVerifyFail",
        "FailedOperation.FailResolvePacket",
        "FailedOperation.JsonParseFail",
        "InternalError.JsonParseFail",
        "FailedOperation.OtherError",
        "FailedOperation.ParametersOtherError",
        "InternalError.SigFieldMissing",
        "InternalError.SigVerificationFail",
        "InternalError.RestApiInterfaceNotExist",
        "ActionOffline",
        "InvalidAction",
        "NoSuchVersion",
        "UnsupportedRegion",
        "UnknownParameter",
        "UnsupportedOperation",
        "UnauthorizedOperation",
    ),
)

#: Whose fault a code is (unknown codes are permanent).
classify = ERRORS.classify
