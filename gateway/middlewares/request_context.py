"""Request id, the JSON error envelope, and one access-log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import HTTP_ERRORS, ApiError, internal
from gateway.keys import ACCOUNT, PHONE_COUNT, REQUEST_ID, RESPONSE_HEADERS, ROUTE
from gateway.phones import scrub
from gateway.redis_health import REQUEST_BUDGET, RedisBudget
from gateway.responses import error_response

__all__ = ["request_context"]

access_log = logging.getLogger("smsedge.access")
log = logging.getLogger("smsedge.errors")
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
UNMATCHED_ROUTE = "<unmatched>"


def _request_id(request: web.Request) -> str:
    # The id is echoed and logged as it is (never masked), so one that holds a number is replaced.
    offered = request.headers.get("X-Request-ID", "")
    if _CLIENT_REQUEST_ID.fullmatch(offered) and scrub(offered) == offered:
        return offered
    return uuid.uuid4().hex


def route_of(request: web.Request) -> str:
    """The route template (``/api/sms/send``); every unknown path is one value."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    code, message = HTTP_ERRORS.get(exc.status, ("INVALID_PARAMS", "请求参数错误"))
    headers = {name: value for name, value in exc.headers.items() if name in ("Allow",)}
    return ApiError(exc.status, code, message, headers)


def request_context() -> web.middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = request[REQUEST_ID] = _request_id(request)
        request[ROUTE] = route_of(request)
        request[RESPONSE_HEADERS] = {}
        REQUEST_BUDGET.set(RedisBudget())  # all of this request's Redis calls share redis.timeout
        try:
            response = await handler(request)
        except ApiError as error:
            response = error_response(error, request_id)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = error_response(_from_http_exception(exc), request_id)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request[ROUTE])
            response = error_response(internal(), request_id)
        response.headers.update(request[RESPONSE_HEADERS])
        response.headers["X-Request-ID"] = request_id
        account = request.get(ACCOUNT)
        access_log.info(
            "%s %s %d", request.method, request[ROUTE], response.status,
            extra={
                "request_id": request_id,
                "method": request.method,
                "route": request[ROUTE],
                "status": response.status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "account": account.name if account else None,
                "phones": request.get(PHONE_COUNT, 0),
            },
        )
        return response

    return middleware
