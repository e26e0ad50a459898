"""API errors and the JSON envelope every error is sent in.

Codes are part of the public contract (``docs/api.md``, "Status and error codes") and never change
once published; messages are Chinese, in the seed's voice. Each error is made fresh by a factory
where it is raised: a shared exception instance collects the traceback of every raise, and with it
every request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

__all__ = [
    "ACCOUNT_DISABLED",
    "ACCOUNT_EXISTS",
    "CLIENT_CLOSED_REQUEST",
    "FORBIDDEN",
    "HTTP_ERRORS",
    "IDEMPOTENCY_CONFLICT",
    "INSUFFICIENT_BALANCE",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "METHOD_NOT_ALLOWED",
    "NOT_FOUND",
    "PAYLOAD_TOO_LARGE",
    "PHONE_RATE_LIMITED",
    "PROVIDER_ERROR",
    "PROVIDER_FORBIDDEN",
    "PROVIDER_TIMEOUT",
    "QUOTA_EXCEEDED",
    "RATE_LIMITED",
    "REQUEST_TIMEOUT",
    "UNAUTHORIZED",
    "UNAVAILABLE",
    "UNVERIFIED",
    "ApiError",
    "account_disabled",
    "client_closed",
    "error_body",
    "error_kind",
    "insufficient_balance",
    "internal",
    "invalid",
    "quota_exceeded",
    "rate_limited",
    "store_unavailable",
    "unauthorized",
    "unverified",
]

# The public codes, by status (docs/api.md, "Status and error codes"): each spelt here only and
# used by name everywhere else, so no code can drift by a typo in one place.
INVALID_PARAMS = "INVALID_PARAMS"
UNAUTHORIZED = "UNAUTHORIZED"
FORBIDDEN = "FORBIDDEN"  # a carrier's receipt push with a missing or wrong token
UNVERIFIED = "UNVERIFIED"
INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
PROVIDER_FORBIDDEN = "PROVIDER_FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
ACCOUNT_EXISTS = "ACCOUNT_EXISTS"  # the admin API's create
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
RATE_LIMITED = "RATE_LIMITED"
PHONE_RATE_LIMITED = "PHONE_RATE_LIMITED"
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"  # the account's daily or monthly limit (docs/quotas.md)
CLIENT_CLOSED_REQUEST = "CLIENT_CLOSED_REQUEST"
INTERNAL_ERROR = "INTERNAL_ERROR"
PROVIDER_ERROR = "PROVIDER_ERROR"
UNAVAILABLE = "UNAVAILABLE"
PROVIDER_TIMEOUT = "PROVIDER_TIMEOUT"


class ApiError(Exception):
    """An error answered to the caller as ``{"success": false, "message", "code", "request_id"}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        close_connection: bool = False,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.close_connection = close_connection  # the connection's state is unknown after it


def invalid(message: str) -> ApiError:
    return ApiError(400, INVALID_PARAMS, f"请求参数错误:{message}")


def error_body(code: str, message: str, request_id: str) -> dict[str, object]:
    return {"success": False, "message": message, "code": code, "request_id": request_id}


def error_kind(status: int, code: str, message: str) -> Callable[[], ApiError]:
    """A maker of one kind of error: ``raise unauthorized()`` makes a new exception each time."""
    return functools.partial(ApiError, status, code, message)


unauthorized = error_kind(401, UNAUTHORIZED, "认证失败,API Key 或 Secret 无效")
account_disabled = error_kind(403, ACCOUNT_DISABLED, "权限不足:账户已停用")
unverified = error_kind(403, UNVERIFIED, "权限不足:账户未完成实名认证")
insufficient_balance = error_kind(403, INSUFFICIENT_BALANCE, "发送失败:余额不足")
store_unavailable = error_kind(503, UNAVAILABLE, "服务暂不可用:记录存储无法访问,请稍后重试")
internal = error_kind(500, INTERNAL_ERROR, "服务器内部错误")
# nginx's 499: the client went away before its request was in. Nobody reads this answer; the status
# is what the access line and the metrics record.
client_closed = error_kind(499, CLIENT_CLOSED_REQUEST, "客户端在请求传完前断开了连接")
rate_limited = error_kind(429, RATE_LIMITED, "请求频率超限,请稍后重试")
_QUOTA_MESSAGES = {"daily": "发送失败:已达到今日发送上限", "monthly": "发送失败:已达到本月发送上限"}


def quota_exceeded(period: str, retry_after: int) -> ApiError:
    """The account's ``period`` limit (daily, monthly) is reached until ``retry_after`` seconds on."""
    return ApiError(429, QUOTA_EXCEEDED, _QUOTA_MESSAGES[period], {"Retry-After": str(retry_after)})


# Answers aiohttp raises as HTTPException, by status: the envelope code and message for each.
HTTP_ERRORS = {
    400: (INVALID_PARAMS, "请求参数错误"),
    404: (NOT_FOUND, "接口不存在"),
    405: (METHOD_NOT_ALLOWED, "请求方法不被允许"),
    413: (PAYLOAD_TOO_LARGE, "请求体过大"),
}
