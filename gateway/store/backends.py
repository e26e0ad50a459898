"""Store backends by name (``store.backend``), in one table.

Each entry builds its store from the config and the :class:`~gateway.redis.client.RedisSource` of
whoever runs it (the app, the CLI): a backend on Redis takes the one shared client from it, the
others ignore it. To add a backend, write its module (a class implementing
:class:`gateway.store.base.Store`, run through ``tests/test_store_contract.py``) and add one entry
here; ``docs/deployment.md`` says the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.config.model import GatewayConfig
from gateway.redis.client import RedisSource
from gateway.store.base import Store
from gateway.store.cache import CachedStore
from gateway.store.redis.store import RedisStore
from gateway.store.sqlite.store import SQLiteStore

__all__ = ["STORES", "StoreFactory", "build_store", "with_store"]

T = TypeVar("T")
StoreFactory = Callable[[GatewayConfig, RedisSource], Store]

STORES: dict[str, StoreFactory] = {
    "sqlite": lambda config, redis: SQLiteStore(config.store.path, timeout=config.store.timeout),
    "redis": lambda config, redis: RedisStore(redis.client(), config.redis.key_prefix),
}


def build_store(config: GatewayConfig, redis: RedisSource) -> Store:
    """The store ``store.backend`` names (one the config has checked), not yet opened, behind the
    account cache every backend shares (``gateway.store.cache``).

    ``redis`` (needed by a backend on Redis) stays the caller's to close.
    """
    return CachedStore(STORES[config.store.backend](config, redis))


async def with_store(config: GatewayConfig, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` on the configured store, on a Redis client of its own if it uses one."""
    async with RedisSource(config.redis) as redis:
        store = build_store(config, redis)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()
