"""GET /status: how the gateway is doing, for operators — aggregates only.

Carriers (circuit state, success rate and latency over their last calls), the routes and how many
numbers each sent where, charts of the last 30 minutes (``gateway.status.charts``), store and
rate-limiter health, the build version. Nothing here names a number, an account or a key, so the
page needs no credentials.

``GET /status.json`` is the same snapshot as data: the page's script fetches it to update the
figures in place (no page reload, which would move a reader's focus and place; WCAG 2.2.1), and
every text in it is formatted here, once, for the template and the script alike.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from gateway.config.model import GatewayConfig, RoutingRule
from gateway.keys import CLOCK, CONFIG, LIMITER, RUNTIME, STATUS, STORE
from gateway.phones import mask_template_id
from gateway.ratelimit import LimiterUnavailable
from gateway.sending.routing import DEFAULT_RULE, REQUESTED_RULE
from gateway.status.carrier_stats import CarrierSummary
from gateway.status.charts import HEIGHT, WIDTH, charts
from gateway.store.base import StoreUnavailable

__all__ = ["status_json", "status_page"]

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


def _figures(summary: CarrierSummary) -> dict[str, object]:
    """The carrier's numbers as the page shows them (``—`` where there is nothing yet)."""

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f} ms"

    rate = summary.success_rate
    ago = summary.last_seconds_ago
    return {
        "success_rate": "—" if rate is None else f"{rate * 100:.1f}%",
        "calls": summary.calls,
        "avg": ms(summary.avg_ms),
        "p95": ms(summary.p95_ms),
        "last": "暂无" if ago is None else f"{int(ago)} 秒前",
    }


def _updated(app: web.Application, config: GatewayConfig) -> dict[str, str]:
    """When this snapshot was taken, in the gateway's time zone, with the zone shown."""
    now = datetime.fromtimestamp(app[CLOCK](), config.server.zone)
    offset = now.strftime("%z")
    return {
        "iso": now.isoformat(timespec="seconds"),
        "text": f"{now:%H:%M:%S} {config.server.timezone} (UTC{offset[:3]}:{offset[3:]})",
    }


def _carrier_row(app: web.Application, name: str) -> dict[str, object]:
    runtime = app[RUNTIME].current
    backend = runtime.config.providers.backends[name]
    summary = app[STATUS].carriers.summary(name)
    breaker = runtime.breakers.get(name)
    return {
        "name": name,
        "plugin": backend.plugin,
        "role": _role(runtime.config, name),
        "circuit_open": bool(breaker and breaker.is_open),
        **_figures(summary),
    }


def _match_text(rule: RoutingRule) -> str:
    """What a routing rule matches, in words; accounts only counted (the page names no account)."""
    match = rule.match
    parts = [
        f"{label} {', '.join(sorted(values))}"
        for label, values in (
            ("国家/地区", match.countries),
            ("号段", match.prefixes),
            ("模板", match.templates),
        )
        if values
    ]
    if match.accounts:
        parts.append(f"{len(match.accounts)} 个指定账户")
    return " · ".join(parts) or "全部号码"


def _target_text(rule: RoutingRule) -> str:
    if rule.to:
        return rule.to
    if rule.split:
        return " / ".join(f"{name} {weight}%" for name, weight in rule.split)
    return "最便宜 (cheapest)"


def _routing_rows(app: web.Application) -> list[dict[str, object]]:
    """Each routing rule, then the caller-named and default ways, with what each took."""
    providers = app[RUNTIME].current.config.providers
    tally = app[STATUS].routing
    rows: list[dict[str, object]] = [
        {
            "name": rule.name,
            "match": _match_text(rule),
            "target": _target_text(rule),
            "taken": tally.taken(rule.name),
        }
        for rule in providers.routes
    ]
    rows.append(
        {
            "name": REQUESTED_RULE,
            "match": "请求指定了 provider",
            "target": "所指定的服务商",
            "taken": tally.taken(REQUESTED_RULE),
        }
    )
    rows.append(
        {
            "name": DEFAULT_RULE,
            "match": "没有路由匹配",
            "target": providers.default,
            "taken": tally.taken(DEFAULT_RULE),
        }
    )
    return rows


async def _callback_queue(app: web.Application) -> dict[str, object] | None:
    """The callback events waiting to be delivered, and the oldest one's age (None: unknown now)."""
    try:
        depth, oldest = await app[STORE].callback_backlog(int(app[CLOCK]() * 1000))
    except StoreUnavailable:
        return None
    return {"queue_depth": depth, "oldest_age_seconds": round(oldest, 1)}


def _uncounted_templates(config: GatewayConfig) -> list[str]:
    """Templates without ``text``: each of their messages is charged as one segment, whatever the
    carrier bills (``gateway.billing``), so operators see which to complete."""
    return sorted(
        mask_template_id(template_id)
        for template_id, template in config.templates.items()
        if template.text is None
        and any(template.words(backend).text is None for backend in config.providers.backends)
    )


async def _snapshot(app: web.Application) -> dict[str, Any]:
    """What the page shows, as plain data (the page renders it, /status.json returns it)."""
    config = app[CONFIG]
    store_ok = await _health(app[STORE].ping, StoreUnavailable, "store")
    callbacks = await _callback_queue(app) if store_ok else None
    limiter_ok = await _health(app[LIMITER].backend.ping, LimiterUnavailable, "rate limiter")
    carriers = [_carrier_row(app, name) for name in app[RUNTIME].current.config.providers.backends]
    return {
        "carriers": carriers,
        "routes": _routing_rows(app),
        "window": app[STATUS].carriers.size,
        "charts": [asdict(chart) for chart in charts(app[STATUS].timeline.minutes())],
        "pid": os.getpid(),
        "workers": config.server.workers,
        "store": {"backend": config.store.backend, "ok": store_ok},
        "limiter": {"backend": config.ratelimit.backend, "ok": limiter_ok},
        "callbacks": callbacks,
        "uncounted_templates": _uncounted_templates(app[RUNTIME].current.config),
        "healthy": store_ok and limiter_ok and not any(c["circuit_open"] for c in carriers),
        "updated": _updated(app, config),
    }


async def status_page(request: web.Request) -> web.Response:
    context = {"page": "status", "chart_size": (WIDTH, HEIGHT), **await _snapshot(request.app)}
    response = aiohttp_jinja2.render_template("status.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response


async def status_json(request: web.Request) -> web.Response:
    """The page's figures as JSON, for its script's in-place refresh (and for anyone's curl)."""
    response = web.json_response(await _snapshot(request.app), dumps=_dumps)
    response.headers["Cache-Control"] = "no-store"
    return response


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
