"""Building the configured store backend (``store.backend``)."""

from __future__ import annotations

from gateway.config import GatewayConfig
from gateway.store import Store
from gateway.store.sqlite import SQLiteStore

__all__ = ["build_store"]


def build_store(config: GatewayConfig) -> Store:
    """The store ``config.store`` names; a Redis one reads ``config.redis`` (URL, prefix, timeout)."""
    if config.store.backend == "redis":
        # Imported here: a SQLite deployment never loads the Redis client.
        from gateway.store.redis_store import RedisStore

        return RedisStore(config.redis)
    return SQLiteStore(config.store.path, timeout=config.store.timeout)
