"""POST /api/sms/send and /api/sms/batch-send.

Each route declares what it costs the account's bucket (``costs``) and its three steps for the
request's Idempotency-Key (``idempotent_send``): check the caller and the body, send, reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from aiohttp import web
from msgspec import UNSET

from gateway.api.idempotency import idempotent_send
from gateway.api.models import (
    MAX_BATCH,
    BatchData,
    BatchRequest,
    BatchResponse,
    BatchResult,
    SendData,
    SendRequest,
    SendResponse,
)
from gateway.api.ratelimit import costs, one_token
from gateway.api.validation import batch_input, decoded_body, send_input
from gateway.callbacks.urls import CallbackUrlRefused, check_callback_url
from gateway.carriers.base import FailureKind, Outcome
from gateway.errors import (
    INVALID_PARAMS,
    PHONE_RATE_LIMITED,
    PROVIDER_ERROR,
    PROVIDER_TIMEOUT,
    ApiError,
    invalid,
    unverified,
)
from gateway.keys import ACCOUNT, PHONE_COUNT, REQUEST_ID
from gateway.phones import scrub
from gateway.responses import error_response, json_response
from gateway.sending.model import OWN_PHONE_LIMIT, Delivery, SendInput

__all__ = ["batch_send", "send"]

CARRIER_RATE_LIMIT_RETRY_AFTER = 60  # seconds; carriers do not say


def refusal(outcome: Outcome) -> ApiError:
    """The caller's answer for a number the carrier did not take, in the carrier's terms."""
    if outcome.code == OWN_PHONE_LIMIT:  # the gateway's own window, not a carrier's refusal
        return ApiError(
            429,
            PHONE_RATE_LIMITED,
            f"发送失败:该号码发送频率超限(网关限制),{outcome.message}",
            {"Retry-After": str(outcome.retry_after)},
        )
    reason = scrub(f"{outcome.message or ''} ({outcome.code})")
    if outcome.kind is FailureKind.CALLER:
        return ApiError(400, INVALID_PARAMS, f"发送失败:请求参数错误,{reason}")
    if outcome.kind is FailureKind.RATE_LIMITED:
        retry_after = str(outcome.retry_after or CARRIER_RATE_LIMIT_RETRY_AFTER)
        return ApiError(
            429, PHONE_RATE_LIMITED, f"发送失败:该号码发送频率超限,{reason}", {"Retry-After": retry_after}
        )
    if outcome.kind is FailureKind.TIMEOUT:
        return ApiError(504, PROVIDER_TIMEOUT, "发送失败:服务商响应超时,发送结果未知")
    return ApiError(502, PROVIDER_ERROR, f"发送失败:服务商拒绝发送,{reason}")


async def one_per_number(request: web.Request) -> int:
    """A batch costs one token per distinct entry, counted before the entries are checked."""
    try:
        body = await decoded_body(request, BatchRequest)
    except ApiError:  # not a JSON object: refused later, for one token
        return 1
    phones = body.phones if isinstance(body, BatchRequest) else body.get("phones")
    if not isinstance(phones, list):
        return 1
    return max(1, min(MAX_BATCH, len({phone for phone in phones if isinstance(phone, str)})))


async def _checked(request: web.Request, model: type[Any], checked: Callable[[Any], SendInput]) -> SendInput:
    """Who may send what: an ``ApiError`` here means nothing was sent."""
    if request[ACCOUNT].verification_status != "approved":
        raise unverified()
    send_input = checked(await decoded_body(request, model))
    if send_input.callback_url is not None:
        try:
            check_callback_url(send_input.callback_url, request[ACCOUNT].callback_prefixes)
        except CallbackUrlRefused as refused:
            raise invalid(refused.reason) from None
    request[PHONE_COUNT] = len(send_input.phones)
    return send_input


async def _check_send(request: web.Request) -> SendInput:
    return await _checked(request, SendRequest, send_input)


async def _check_batch(request: web.Request) -> SendInput:
    return await _checked(request, BatchRequest, batch_input)


def _send_reply(request: web.Request, deliveries: list[Delivery]) -> web.Response:
    [delivery] = deliveries
    if not delivery.outcome.accepted:
        return error_response(refusal(delivery.outcome), request[REQUEST_ID])
    return json_response(
        SendResponse(
            success=True,
            message="短信发送成功",
            data=SendData(
                message_id=cast(str, delivery.message_id),  # accepted: its record (and id) was written
                phone=delivery.phone.masked,
                provider=delivery.provider,
                status=delivery.status,
            ),
        )
    )


def _result(delivery: Delivery) -> BatchResult:
    masked = delivery.phone.masked
    if delivery.outcome.accepted:
        return BatchResult(  # accepted: its record (and id) was written
            phone=masked, success=True, provider=delivery.provider, message_id=cast(str, delivery.message_id)
        )
    # A refused number has a message id too once its record was written.
    return BatchResult(
        phone=masked,
        success=False,
        provider=delivery.provider,
        message_id=delivery.message_id or UNSET,
        message=refusal(delivery.outcome).message,
    )


def _batch_reply(request: web.Request, deliveries: list[Delivery]) -> web.Response:
    results = [_result(delivery) for delivery in deliveries]
    accepted = sum(1 for result in results if result.success)
    failed = len(results) - accepted
    return json_response(
        BatchResponse(
            success=failed == 0,
            message=f"批量发送完成:成功 {accepted} 条,失败 {failed} 条",
            data=BatchData(total=len(results), success_count=accepted, failed_count=failed, results=results),
        )
    )


send = costs(one_token)(idempotent_send(_check_send, _send_reply))
batch_send = costs(one_per_number)(idempotent_send(_check_batch, _batch_reply))
