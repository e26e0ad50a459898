"""Request id, the JSON error envelope, and one access-log line per request: steps of the pipeline.

``begin`` names the request (its id and route template), ``answer_error`` turns whatever a step
below raised into the envelope, ``access_line`` writes the request's one line of the access log
(``sampled_access_line``: only a share of the successes' lines, for ``logging.access_sample``).
"""

from __future__ import annotations

import functools
import logging
import random
import re
import time
from collections.abc import Callable

from aiohttp import web

from gateway.errors import HTTP_ERRORS, ApiError, client_closed, internal
from gateway.ids import new_hex_id
from gateway.keys import ACCOUNT, PHONE_COUNT, REQUEST_ID, ROUTE_TEMPLATE
from gateway.logs import ACCESS_LOG
from gateway.phones import scrub
from gateway.redis.health import REQUEST_BUDGET, RedisBudget
from gateway.responses import error_response

__all__ = [
    "UNMATCHED_ROUTE",
    "AccessLine",
    "access_line",
    "answer_error",
    "begin",
    "route_of",
    "sampled_access_line",
]

log = logging.getLogger("smsedge.errors")
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
UNMATCHED_ROUTE = "<unmatched>"
AccessLine = Callable[[web.Request, str, int, float], None]


def _request_id(request: web.Request) -> str:
    # The id is echoed and logged as it is (never masked), so one that holds a number is replaced.
    offered = request.headers.get("X-Request-ID")
    if offered and _CLIENT_REQUEST_ID.fullmatch(offered) and scrub(offered) == offered:
        return offered
    return new_hex_id()


def route_of(request: web.Request) -> str:
    """The route template (``/api/sms/send``); every unknown path is one value."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def begin(request: web.Request) -> str:
    """Name the request (id and route template) and give it its Redis budget; its id."""
    request_id = request[REQUEST_ID] = _request_id(request)
    request[ROUTE_TEMPLATE] = route_of(request)
    REQUEST_BUDGET.set(RedisBudget())  # all of this request's Redis calls share redis.timeout
    return request_id


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    code, message = HTTP_ERRORS.get(exc.status, HTTP_ERRORS[400])
    headers = {name: value for name, value in exc.headers.items() if name in ("Allow",)}
    return ApiError(exc.status, code, message, headers)


def answer_error(request: web.Request, exc: Exception, request_id: str) -> web.StreamResponse:
    """The envelope for what a step raised; a redirect (an HTTPException under 400) is re-raised.
    A client gone mid-request is a 499 for the access line and the metrics."""
    if isinstance(exc, ApiError):
        return error_response(exc, request_id)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return error_response(_from_http_exception(exc), request_id)
    if isinstance(exc, ConnectionResetError):  # the client's doing, not a bug: no traceback
        log.info("client closed the connection during %s %s", request.method, request[ROUTE_TEMPLATE])
        return error_response(client_closed(), request_id)
    log.error("unhandled error in %s %s", request.method, request[ROUTE_TEMPLATE], exc_info=exc)
    return error_response(internal(), request_id)


@functools.lru_cache(maxsize=1024)
def _masked_line(method: str, route: str, status: int) -> tuple[str, str, str]:
    """The access line's message, method and route, masked: a few hundred distinct values at most
    (route templates, a fixed set of methods, statuses), so each is masked once."""
    return scrub(f"{method} {route} {status}"), scrub(method), scrub(route)


@functools.lru_cache(maxsize=1024)
def _masked_name(name: str) -> str:
    return scrub(name)


def access_line(request: web.Request, request_id: str, status: int, started: float) -> None:
    """The request's access line. What could hold a number (the method, the route, an account's
    name) is masked here; the request id holds none (``_request_id``), status and counts are ints."""
    if not ACCESS_LOG.enabled:
        return
    account = request.get(ACCOUNT)
    message, method, route = _masked_line(request.method, request[ROUTE_TEMPLATE], status)
    ACCESS_LOG.write(
        message,
        {
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "account": _masked_name(account.name) if account else None,
            "phones": request.get(PHONE_COUNT, 0),
        },
    )


def sampled_access_line(sample: float, draw: Callable[[], float] = random.random) -> AccessLine:
    """``access_line`` keeping a ``sample`` share (0 to 1) of the 2xx and 3xx lines; every refusal
    and error (4xx, 5xx, 499) keeps its line, since those are what someone reads the log for.

    At 1 (the default) this is ``access_line`` itself: no draw, no extra call. Below it, a success
    costs one ``draw()``; the metrics count every request either way.
    """
    if sample >= 1.0:
        return access_line

    def sampled(request: web.Request, request_id: str, status: int, started: float) -> None:
        if status >= 400 or draw() < sample:
            access_line(request, request_id, status, started)

    return sampled
