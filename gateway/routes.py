"""Every route of the root app, in one table (the API's are in ``gateway.api``, mounted at /api)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from gateway.api.openapi import serve_openapi
from gateway.carriers.receipts import carrier_receipts
from gateway.config.model import GatewayConfig
from gateway.health import WriteProbe, healthz, readiness
from gateway.keys import METRICS
from gateway.pages import admin_page, console_page, docs_page, serve_asset
from gateway.status.page import status_json, status_page

__all__ = ["setup_routes"]


def setup_routes(app: web.Application, config: GatewayConfig) -> None:
    app.router.add_post("/callbacks/{provider}", carrier_receipts, name="callbacks")
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readiness(WriteProbe()), name="readyz")
    app.router.add_get("/openapi.json", serve_openapi, name="openapi")
    # Pages for people, and the files they load: served here, so they work with no CDN and offline.
    app.router.add_get("/", docs_page, name="docs")
    app.router.add_get("/console", console_page, name="console")
    app.router.add_get("/status", status_page, name="status")
    app.router.add_get("/admin", admin_page, name="admin")  # 404 unless admin.tokens are set
    app.router.add_get("/status.json", status_json, name="status_json")  # the page's in-place refresh
    app.router.add_get("/static/{name}", serve_asset, name="static")
    if config.metrics.enabled:
        # prometheus-client's own handler: text format or OpenMetrics, as the scraper asks.
        app.router.add_get(config.metrics.path, make_aiohttp_handler(app[METRICS].exposition), name="metrics")
