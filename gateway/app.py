"""The application factory: configuration in, a ready aiohttp application out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any

import aiohttp
from aiohttp import web

from gateway.accounts.credentials import SecretVerifier
from gateway.accounts.listed import bootstrap_accounts
from gateway.admin.app import PREFIX as ADMIN_PREFIX
from gateway.admin.app import create_admin_app
from gateway.api import add_api_routes
from gateway.billing.pull import StatusPuller
from gateway.callbacks.deliverer import CallbackDeliverer
from gateway.carriers.base import Carrier
from gateway.carriers.registry import carrier_class
from gateway.clock import Clock, system_clock
from gateway.config.model import GatewayConfig
from gateway.keys import (
    CLOCK,
    CONFIG,
    HTTP_SESSION,
    LIMITER,
    METRICS,
    REDIS,
    RUNTIME,
    STATUS,
    STORE,
    VERIFIER,
)
from gateway.metrics import Metrics
from gateway.middlewares import build_middlewares
from gateway.pages import setup_templates
from gateway.ratelimit.backends import build_limiter
from gateway.ratelimit.guard import GuardedLimiter
from gateway.redis.client import RedisSource
from gateway.routes import setup_routes
from gateway.runtime import Runtime, RuntimeSlot
from gateway.sending.dispatch import Dispatcher
from gateway.sending.sender import build_sender
from gateway.status.carrier_stats import CarrierStats
from gateway.status.routing_tally import RoutingTally
from gateway.status.timeline import Timeline
from gateway.status.view import StatusView
from gateway.store.backends import build_store
from gateway.store.cache import CachedStore
from gateway.store.changes import follow_changes

__all__ = ["build_runtime", "create_app"]


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """The one Redis client, for every part configured for Redis (made only if one is).

    Shared, so an outage one part meets makes the others fail fast too (``gateway.redis.health``).
    """
    async with RedisSource(app[CONFIG].redis) as redis:
        app[REDIS] = redis
        yield


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = build_store(config, app[REDIS])
    await store.open()
    try:
        await bootstrap_accounts(store, config.accounts)
    except BaseException:
        await store.close()  # a store that cannot start must not leak its connections
        raise
    app[STORE] = store
    yield
    await store.close()


async def changes_ctx(app: web.Application) -> AsyncIterator[None]:
    """Follow other processes' account changes (``gateway.store.changes``) while the app runs."""
    store = app[STORE]
    task = asyncio.create_task(follow_changes(store)) if isinstance(store, CachedStore) else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def _running(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """``work`` as a task for as long as the context lasts."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def callbacks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Deliver the store's callback events while the app runs (every worker; leases share them)."""
    store = app[STORE]
    deliverer = CallbackDeliverer(
        store, store.account_by_key, app[CONFIG].server.zone, app[METRICS], clock=app[CLOCK]
    )
    async with _running(deliverer.run()):
        yield


async def status_pull_ctx(app: web.Application) -> AsyncIterator[None]:
    """Ask carriers about late receipts while the app runs (every worker; a lease per carrier)."""
    puller = StatusPuller(app[STORE], app[RUNTIME], app[METRICS], app[CLOCK])
    async with _running(puller.run()):
        yield


async def limiter_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    backend = build_limiter(config, app[REDIS])
    app[LIMITER] = GuardedLimiter(backend, config.ratelimit.on_backend_error, app[METRICS])
    yield
    await backend.close()


async def http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    """One client session (one connection pool) shared by every carrier."""
    connector = aiohttp.TCPConnector(limit=200, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[HTTP_SESSION] = session
        yield


def build_runtime(app: web.Application, config: GatewayConfig) -> Runtime:
    """Carriers (on the shared client session), breakers and sender for ``config``, ready to serve.

    Used at start and by every reload; the store, limiter and status view are the app's, kept across
    reloads.
    """
    carriers: dict[str, Carrier[Any]] = {
        name: carrier_class(backend.plugin)(backend, app[HTTP_SESSION])
        for name, backend in config.providers.backends.items()
    }
    metrics = app[METRICS]
    dispatcher = Dispatcher(config.providers.backends, config.templates, carriers, metrics, app[STATUS])
    sender = build_sender(config, app[STORE], app[LIMITER], dispatcher, app[CLOCK], metrics)
    return Runtime(config, carriers, dispatcher.breakers, sender)


async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    """The runtime of the start-up config; on the way out it and any retired ones are closed."""
    slot = app[RUNTIME] = RuntimeSlot(build_runtime(app, app[CONFIG]))
    app[METRICS].config_loaded()
    yield
    await slot.close()


async def timeline_ctx(app: web.Application) -> AsyncIterator[None]:
    """Roll the status page's timeline on each minute boundary while the app runs."""
    task = asyncio.create_task(app[STATUS].timeline.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(
    config: GatewayConfig, *, clock: Clock = system_clock, api_routes: Iterable[web.RouteDef] = ()
) -> web.Application:
    """The root app: the API under /api, pages, health, metrics, receipts; the admin API mounted.

    ``api_routes``: more routes under /api, behind its auth, rate limit and masking (tests).
    """
    metrics = Metrics(sorted(config.providers.backends))
    status = StatusView(
        CarrierStats(config.providers.backends), Timeline(), RoutingTally(metrics.route_decisions)
    )
    app = web.Application(
        middlewares=build_middlewares(config, metrics, status.timeline),
        client_max_size=config.server.max_body_bytes,
    )
    app[CONFIG] = config
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[STATUS] = status
    app[VERIFIER] = SecretVerifier()
    app.cleanup_ctx.extend(
        [
            redis_ctx,
            store_ctx,
            changes_ctx,
            callbacks_ctx,
            limiter_ctx,
            http_session_ctx,
            runtime_ctx,
            status_pull_ctx,
            timeline_ctx,
        ]
    )
    setup_routes(app, config)
    add_api_routes(app, api_routes)
    app.add_subapp(ADMIN_PREFIX, create_admin_app(parent=app))  # 404 unless admin.tokens are set
    setup_templates(app)
    return app
