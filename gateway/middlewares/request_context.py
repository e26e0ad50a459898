"""Request id, the JSON error envelope, and one access-log line per request."""

from __future__ import annotations

import logging
import re
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import HTTP_ERRORS, ApiError, internal
from gateway.ids import new_hex_id
from gateway.keys import ACCOUNT, PHONE_COUNT, REQUEST_ID, RESPONSE_HEADERS, ROUTE
from gateway.logs import log_masked
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
    return new_hex_id()


def route_of(request: web.Request) -> str:
    """The route template (``/api/sms/send``); every unknown path is one value."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    code, message = HTTP_ERRORS.get(exc.status, ("INVALID_PARAMS", "请求参数错误"))
    headers = {name: value for name, value in exc.headers.items() if name in ("Allow",)}
    return ApiError(exc.status, code, message, headers)


def _log_access(request: web.Request, request_id: str, status: int, started: float) -> None:
    """The access line: what ``MaskingFilter`` and ``JsonFormatter`` would make of it, made once.

    What could hold a number (the method, the route, an account's name, the message) is masked
    here, as the formatter would; the request id holds none (``_request_id``), status and counts
    are small ints, never masked.
    """
    account = request.get(ACCOUNT)
    method, route = scrub(request.method), scrub(request[ROUTE])
    log_masked(access_log, scrub(f"{request.method} {request[ROUTE]} {status}"), {
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "account": scrub(account.name) if account else None,
        "phones": request.get(PHONE_COUNT, 0),
    })


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
        _log_access(request, request_id, response.status, started)
        return response

    return middleware
