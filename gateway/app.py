"""The application factory: configuration in, a ready aiohttp application out."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.accounts import bootstrap_accounts
from gateway.carriers.base import Carrier
from gateway.carriers.registry import carrier_class
from gateway.clock import Clock, system_clock
from gateway.config.model import GatewayConfig
from gateway.credentials import SecretVerifier
from gateway.keys import (
    BREAKERS,
    CARRIER_STATS,
    CARRIERS,
    CLOCK,
    CONFIG,
    HTTP_SESSION,
    LIMITER,
    METRICS,
    REDIS,
    SENDER,
    STORE,
    VERIFIER,
)
from gateway.metrics import Metrics
from gateway.middlewares import build_middlewares
from gateway.pages import setup_templates
from gateway.ratelimit.guard import GuardedLimiter
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.redis import RedisLimiter
from gateway.redis_client import redis_client
from gateway.routes import setup_routes
from gateway.sending.circuit import CircuitBreaker
from gateway.sending.dispatch import Dispatcher
from gateway.sending.sender import Sender
from gateway.sending.stats import CarrierStats
from gateway.store import build_store
from gateway.store.redis.store import RedisStore

__all__ = ["create_app"]


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """One Redis client for every part configured for Redis; none when nothing is.

    Shared, so an outage one part meets makes the others fail fast too (``redis_health``).
    """
    config = app[CONFIG]
    if "redis" not in (config.store.backend, config.ratelimit.backend):
        yield
        return
    client = redis_client(config.redis)
    app[REDIS] = client
    yield
    await client.aclose()


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = build_store(config)
    if isinstance(store, RedisStore):
        store.share_client(app[REDIS])  # the app's one client, not one of its own
    await store.open()
    try:
        await bootstrap_accounts(store, config.accounts)
    except BaseException:
        await store.close()  # a store that cannot start must not leak its connections
        raise
    app[STORE] = store
    yield
    await store.close()


async def limiter_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    backend = (
        RedisLimiter(app[REDIS], config.redis.key_prefix)
        if config.ratelimit.backend == "redis"
        else MemoryLimiter()
    )
    app[LIMITER] = GuardedLimiter(backend, config.ratelimit.on_backend_error, app[METRICS])
    yield
    await backend.close()


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
    metrics = app[METRICS]
    breakers = {
        name: CircuitBreaker(
            backend.circuit_failures, backend.circuit_cooldown, metrics.circuit_open.labels(name)
        )
        for name, backend in config.providers.backends.items()
    }
    app[BREAKERS] = breakers
    stats = app[CARRIER_STATS] = CarrierStats(carriers)
    dispatcher = Dispatcher(config, carriers, breakers, metrics, stats)
    # Without a configured key the hash only has to agree within this process (memory limiter).
    phone_secret = (config.server.secret_key or secrets.token_hex(32)).encode()
    app[SENDER] = Sender(
        config, app[STORE], dispatcher, app[CLOCK], app[LIMITER], metrics, phone_secret
    )
    yield
    for carrier in carriers.values():
        await carrier.close()


def create_app(config: GatewayConfig, *, clock: Clock = system_clock) -> web.Application:
    metrics = Metrics(sorted(config.providers.backends))
    app = web.Application(
        middlewares=build_middlewares(config, metrics),
        client_max_size=config.server.max_body_bytes,
    )
    app[CONFIG] = config
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[VERIFIER] = SecretVerifier()
    app.cleanup_ctx.extend([redis_ctx, store_ctx, limiter_ctx, http_session_ctx, carriers_ctx])
    setup_routes(app, config)
    setup_templates(app)
    return app
