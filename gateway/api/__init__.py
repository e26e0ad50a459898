"""The API: an aiohttp sub-app the root app mounts at /api, with its own middlewares and headers.

Its chain runs inside the root app's (request id and error envelope, metrics, body limit), so
its refusals are enveloped, counted and logged like any other answer. Outermost first:

1. ``authentication`` — who is calling; every route here needs a key and secret (aiohttp's own
   404/405 answers need none: there is nothing there to protect).
2. ``rate_limit`` — after auth, because buckets are per account; before the handler, so a refused
   request costs nothing and writes nothing. Each route declares its cost (``ratelimit.costs``).
3. ``masking`` — the last look at what a handler returns, before anything outside it (logs,
   metrics, the client) can see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from gateway.api.account import account_info
from gateway.api.auth import authentication
from gateway.api.masking import masking
from gateway.api.ratelimit import rate_limit
from gateway.api.records import records
from gateway.api.sms import batch_send, send
from gateway.config.model import GatewayConfig
from gateway.keys import CLOCK, CONFIG, LIMITER, METRICS, RUNTIME, STORE, VERIFIER

__all__ = ["API_HEADERS", "SHARED", "api_headers", "create_api_app", "share_state"]

# Every API answer, errors included: never sniffed, never kept by a cache or a proxy (balances,
# records). Set as a response is prepared, so refusals from the root app's layers (413, 408) and
# from routing (404, 405) carry them too.
API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
# What the API reads of the state the root app opens. Copied once at startup: ``request.app`` is
# this sub-app, and one lookup in it is far cheaper than ``request.config_dict`` on every access.
SHARED = (CONFIG, CLOCK, METRICS, VERIFIER, STORE, LIMITER, RUNTIME)


def create_api_app(
    config: GatewayConfig, *, parent: web.Application, extra_routes: Iterable[web.RouteDef] = ()
) -> web.Application:
    """The /api sub-app, sharing ``parent``'s state; ``extra_routes`` (tests) run in its chain too."""
    api = web.Application(middlewares=[
        authentication(),
        rate_limit(),
        masking(),
    ])
    api.router.add_post("/sms/send", send, name="send")
    api.router.add_post("/sms/batch-send", batch_send, name="batch_send")
    api.router.add_get("/sms/records", records, name="records", allow_head=False)
    api.router.add_get("/account/info", account_info, name="account_info", allow_head=False)
    api.router.add_routes(extra_routes)
    api.on_startup.append(share_state(parent))
    api.on_response_prepare.append(api_headers)
    return api


def share_state(parent: web.Application) -> Callable[[web.Application], Awaitable[None]]:
    """A sub-app's startup hook that copies ``SHARED`` from ``parent`` (the admin API's too)."""

    async def share(api: web.Application) -> None:
        # The parent's cleanup contexts have run by now: its startup signal calls ours after them.
        for key in SHARED:
            api[key] = parent[key]

    return share


async def api_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in API_HEADERS.items():
        response.headers.setdefault(name, value)
