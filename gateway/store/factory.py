"""Building the configured store backend."""

from __future__ import annotations

from gateway.config import StoreConfig
from gateway.store import Store
from gateway.store.sqlite import SQLiteStore

__all__ = ["build_store"]


def build_store(config: StoreConfig) -> Store:
    return SQLiteStore(config.path, timeout=config.timeout)
