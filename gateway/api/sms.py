"""POST /api/sms/send and /api/sms/batch-send."""

from __future__ import annotations

from aiohttp import web

from gateway.api.idempotency import idempotent, mark_sending, mark_sent
from gateway.api.validation import SendInput, parse_batch, parse_json_object, parse_send
from gateway.carriers.base import FailureKind, Outcome
from gateway.errors import ApiError, unverified
from gateway.keys import ACCOUNT, PHONE_COUNT, SENDER
from gateway.phones import scrub
from gateway.responses import json_response
from gateway.sending.sender import OWN_PHONE_LIMIT, Delivery
from gateway.store.base import Account

__all__ = ["batch_send", "send"]

CARRIER_RATE_LIMIT_RETRY_AFTER = 60  # seconds; carriers do not say


def refusal(outcome: Outcome) -> ApiError:
    """The caller's answer for a number the carrier did not take, in the carrier's terms."""
    if outcome.code == OWN_PHONE_LIMIT:  # the gateway's own window, not a carrier's refusal
        return ApiError(
            429, "PHONE_RATE_LIMITED", f"发送失败:该号码发送频率超限(网关限制),{outcome.message}",
            {"Retry-After": str(outcome.retry_after)},
        )
    reason = scrub(f"{outcome.message or ''} ({outcome.code})")
    if outcome.kind is FailureKind.CALLER:
        return ApiError(400, "INVALID_PARAMS", f"发送失败:请求参数错误,{reason}")
    if outcome.kind is FailureKind.RATE_LIMITED:
        retry_after = str(outcome.retry_after or CARRIER_RATE_LIMIT_RETRY_AFTER)
        return ApiError(
            429, "PHONE_RATE_LIMITED", f"发送失败:该号码发送频率超限,{reason}",
            {"Retry-After": retry_after},
        )
    if outcome.kind is FailureKind.TIMEOUT:
        return ApiError(504, "PROVIDER_TIMEOUT", "发送失败:服务商响应超时,发送结果未知")
    return ApiError(502, "PROVIDER_ERROR", f"发送失败:服务商拒绝发送,{reason}")


async def _parsed(request: web.Request, parse) -> tuple[Account, SendInput]:
    account = request[ACCOUNT]
    if account.verification_status != "approved":
        raise unverified()
    send_input: SendInput = parse(parse_json_object(await request.read()))
    request[PHONE_COUNT] = len(send_input.phones)
    return account, send_input


async def _deliver(request: web.Request, account: Account, send_input: SendInput) -> list[Delivery]:
    """Call the sender, telling the Idempotency-Key wrapper whether anything reached a carrier."""
    mark_sending(request)
    deliveries = await request.app[SENDER].send(account, send_input)
    mark_sent(request, any(delivery.message_id for delivery in deliveries))
    return deliveries


async def send(request: web.Request) -> web.StreamResponse:
    return await idempotent(request, lambda: _send(request))


async def batch_send(request: web.Request) -> web.StreamResponse:
    return await idempotent(request, lambda: _batch_send(request))


async def _send(request: web.Request) -> web.Response:
    account, send_input = await _parsed(request, parse_send)
    [delivery] = await _deliver(request, account, send_input)
    if not delivery.outcome.accepted:
        raise refusal(delivery.outcome)
    return json_response({
        "success": True,
        "message": "短信发送成功",
        "data": {
            "message_id": delivery.message_id,
            "phone": delivery.phone.masked,
            "provider": delivery.provider,
            "status": delivery.status,
        },
    })


async def _batch_send(request: web.Request) -> web.Response:
    account, send_input = await _parsed(request, parse_batch)
    deliveries = await _deliver(request, account, send_input)
    results: list[dict[str, object]] = []
    for delivery in deliveries:
        if delivery.outcome.accepted:
            results.append(
                {"phone": delivery.phone.masked, "success": True, "message_id": delivery.message_id}
            )
        else:
            failure = {"phone": delivery.phone.masked, "success": False,
                       "message": refusal(delivery.outcome).message}
            if delivery.message_id:
                failure["message_id"] = delivery.message_id
            results.append(failure)
    accepted = sum(1 for result in results if result["success"])
    failed = len(results) - accepted
    return json_response({
        "success": failed == 0,
        "message": f"批量发送完成:成功 {accepted} 条,失败 {failed} 条",
        "data": {
            "total": len(results),
            "success_count": accepted,
            "failed_count": failed,
            "results": results,
        },
    })
