"""The application factory: configuration in, a ready aiohttp application out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.accounts import bootstrap_accounts
from gateway.carrier import Carrier
from gateway.clock import Clock, system_clock
from gateway.config import GatewayConfig
from gateway.credentials import SecretVerifier
from gateway.keys import CARRIERS, CLOCK, CONFIG, HTTP_SESSION, SENDER, STORE, VERIFIER
from gateway.middlewares import build_middlewares
from gateway.registry import carrier_class
from gateway.routes import setup_routes
from gateway.sending import Sender
from gateway.store.factory import build_store

__all__ = ["create_app"]


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = build_store(config.store)
    await store.open()
    await bootstrap_accounts(store, config.accounts)
    app[STORE] = store
    yield
    await store.close()


async def http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """One client session (one connection pool) shared by every carrier."""
    connector = aiohttp.TCPConnector(limit=200, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[HTTP_SESSION] = session
        yield


async def carriers_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    carriers: dict[str, Carrier] = {
        name: carrier_class(backend.plugin)(backend, app[HTTP_SESSION])
        for name, backend in config.providers.backends.items()
    }
    app[CARRIERS] = carriers
    app[SENDER] = Sender(config, app[STORE], carriers, app[CLOCK])
    yield
    for carrier in carriers.values():
        await carrier.close()


def create_app(config: GatewayConfig, *, clock: Clock = system_clock) -> web.Application:
    app = web.Application(
        middlewares=build_middlewares(config),
        client_max_size=config.server.max_body_bytes,
    )
    app[CONFIG] = config
    app[CLOCK] = clock
    app[VERIFIER] = SecretVerifier()
    app.cleanup_ctx.extend([store_ctx, http_session_ctx, carriers_ctx])
    setup_routes(app)
    return app
