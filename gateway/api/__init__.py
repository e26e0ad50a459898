"""The API at /api: its routes, each run as one coroutine of the API's own steps around its handler.

The root app's pipeline runs first, so the API's refusals are enveloped, counted and logged like any
other answer. Each route is wrapped once, at start, in its steps, outermost first: authentication
(``auth``), rate limit (``ratelimit``: after auth, before anything is sent) and masking
(``masking``: the last look before logs, metrics or the client see an answer).
Why that order: (docs/design.md, "The request path").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from gateway.api.account import account_info
from gateway.api.auth import authenticate
from gateway.api.masking import mask_response
from gateway.api.ratelimit import Cost, take_tokens, tokens_for
from gateway.api.records import records
from gateway.api.sms import batch_send, send
from gateway.keys import CLOCK, CONFIG, LIMITER, METRICS, RUNTIME, STORE, TOKENS, VERIFIER
from gateway.middlewares.security_headers import API_HEADERS, set_defaults

__all__ = ["PREFIX", "SHARED", "add_api_routes", "api_headers", "api_route", "share_state"]

PREFIX = "/api"
# What a sub-app (the admin API) reads of the state the root app opens. Copied once at startup:
# ``request.app`` is the sub-app, and one lookup in it is far cheaper than ``request.config_dict``.
SHARED: tuple[web.AppKey[Any], ...] = (CONFIG, CLOCK, METRICS, VERIFIER, STORE, LIMITER, RUNTIME)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def api_route(handler: Handler) -> Handler:
    """``handler`` behind the API's steps: authentication, rate limit, masking."""
    cost_of: Cost | None = getattr(handler, "rate_limit_cost", None)

    async def route(request: web.Request) -> web.StreamResponse:
        account = await authenticate(request)
        if cost_of is None:
            return mask_response(await handler(request))
        # The sender takes these with the per-number windows; whatever it did not, is taken here.
        tokens = request[TOKENS] = tokens_for(request, account, await cost_of(request))
        try:
            response = await handler(request)
        except Exception:
            await take_tokens(request, tokens)  # a 429 wins over the handler's own refusal
            raise
        await take_tokens(request, tokens)
        return mask_response(response)

    return route


def add_api_routes(app: web.Application, extra_routes: Iterable[web.RouteDef] = ()) -> None:
    """The API's routes into ``app``'s router; ``extra_routes`` (tests) go behind its steps too."""
    router = app.router
    router.add_post(f"{PREFIX}/sms/send", api_route(send), name="send")
    router.add_post(f"{PREFIX}/sms/batch-send", api_route(batch_send), name="batch_send")
    router.add_get(f"{PREFIX}/sms/records", api_route(records), name="records", allow_head=False)
    router.add_get(f"{PREFIX}/account/info", api_route(account_info), name="account_info", allow_head=False)
    for extra in extra_routes:
        assert isinstance(extra, web.RouteDef)
        route = web.RouteDef(extra.method, PREFIX + extra.path, api_route(extra.handler), extra.kwargs)
        route.register(router)


def share_state(parent: web.Application) -> Callable[[web.Application], Awaitable[None]]:
    """A sub-app's startup hook that copies ``SHARED`` from ``parent``."""

    async def share(sub_app: web.Application) -> None:
        # The parent's cleanup contexts have run by now: its startup signal calls ours after them.
        for key in SHARED:
            sub_app[key] = parent[key]

    return share


async def api_headers(request: web.Request, response: web.StreamResponse) -> None:
    """A sub-app's ``on_response_prepare`` hook: the API's headers on every answer, errors included."""
    set_defaults(response, API_HEADERS)
