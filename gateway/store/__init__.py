"""Building the configured store backend (``store.backend``)."""

from __future__ import annotations

from gateway.config.model import GatewayConfig
from gateway.store.base import Store
from gateway.store.sqlite.store import SQLiteStore

__all__ = ["build_store"]


def build_store(config: GatewayConfig) -> Store:
    """The store ``config.store`` names; a Redis one reads ``config.redis`` (URL, prefix, timeout)."""
    if config.store.backend == "redis":
        # Imported here: a SQLite deployment never loads the Redis client.
        from gateway.store.redis.store import RedisStore

        return RedisStore(config.redis)
    return SQLiteStore(config.store.path, timeout=config.store.timeout)
