"""GET /status: how the gateway is doing, for operators — aggregates only.

Carriers (circuit state, success rate and latency over their last calls), the routes and how many
numbers each sent where, charts of the last 30
minutes (``gateway.pages.charts``), store and rate-limiter health, the build version. Nothing here
names a number, an account or a key, so the page needs no credentials.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web

from gateway.config.model import GatewayConfig, RouteConfig
from gateway.keys import CARRIER_STATS, CONFIG, LIMITER, ROUTE_TALLY, RUNTIME, STORE, TIMELINE
from gateway.pages.charts import HEIGHT, WIDTH, charts
from gateway.ratelimit import LimiterUnavailable
from gateway.sending.routing import DEFAULT_ROUTE, REQUESTED_ROUTE
from gateway.sending.stats import CarrierSummary
from gateway.store.base import StoreUnavailable

__all__ = ["status_page"]

log = logging.getLogger("smsedge.status")


async def _health(check: Callable[[], Awaitable[None]], failure: type[Exception], what: str) -> bool:
    try:
        await check()
    except failure as exc:
        log.warning("status: %s unavailable: %s", what, exc)
        return False
    return True


def _role(config: GatewayConfig, name: str) -> str:
    if name == config.providers.default:
        return "默认"
    if name in config.providers.failover:
        return f"备用 #{config.providers.failover.index(name) + 1}"
    return "按请求指定"


def _carrier_row(app: web.Application, name: str) -> dict[str, object]:
    runtime = app[RUNTIME].current
    backend = runtime.config.providers.backends[name]
    stats = app.get(CARRIER_STATS)
    summary = stats.summary(name) if stats else CarrierSummary(0, None, None, None, None)
    breaker = runtime.breakers.get(name)
    return {
        "name": name,
        "plugin": backend.plugin,
        "role": _role(runtime.config, name),
        "circuit_open": bool(breaker and breaker.is_open),
        "summary": summary,
    }


def _match_text(route: RouteConfig) -> str:
    """What a route matches, in words; accounts only counted (the page names no account)."""
    match = route.match
    parts = [
        f"{label} {', '.join(sorted(values))}"
        for label, values in (("国家/地区", match.countries), ("号段", match.prefixes),
                              ("模板", match.templates))
        if values
    ]
    if match.accounts:
        parts.append(f"{len(match.accounts)} 个指定账户")
    return " · ".join(parts) or "全部号码"


def _target_text(route: RouteConfig) -> str:
    if route.to:
        return route.to
    if route.split:
        return " / ".join(f"{name} {weight}%" for name, weight in route.split)
    return "最便宜 (cheapest)"


def _route_rows(app: web.Application) -> list[dict[str, object]]:
    """Each configured route, then the caller-named and default ways, with what each took."""
    providers = app[RUNTIME].current.config.providers
    tally = app[ROUTE_TALLY]
    rows = [
        {"name": route.name, "match": _match_text(route), "target": _target_text(route),
         "taken": tally.taken(route.name)}
        for route in providers.routes
    ]
    rows.append({"name": REQUESTED_ROUTE, "match": "请求指定了 provider", "target": "所指定的服务商",
                 "taken": tally.taken(REQUESTED_ROUTE)})
    rows.append({"name": DEFAULT_ROUTE, "match": "没有路由匹配", "target": providers.default,
                 "taken": tally.taken(DEFAULT_ROUTE)})
    return rows


async def status_page(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG]
    store_ok = await _health(app[STORE].ping, StoreUnavailable, "store")
    limiter_ok = await _health(app[LIMITER].backend.ping, LimiterUnavailable, "rate limiter")
    carriers = [_carrier_row(app, name) for name in app[RUNTIME].current.config.providers.backends]
    context = {
        "page": "status",
        "carriers": carriers,
        "routes": _route_rows(app),
        "window": app[CARRIER_STATS].size if CARRIER_STATS in app else 0,
        "charts": charts(app[TIMELINE].minutes()),
        "chart_size": (WIDTH, HEIGHT),
        "pid": os.getpid(),
        "workers": config.server.workers,
        "store": {"backend": config.store.backend, "ok": store_ok},
        "limiter": {"backend": config.ratelimit.backend, "ok": limiter_ok},
        "healthy": store_ok and limiter_ok and not any(c["circuit_open"] for c in carriers),
    }
    response = aiohttp_jinja2.render_template("status.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response
