"""Following the account changes other processes announce, so this process's cache drops them.

Every change through the account service is announced through the store; :func:`follow_changes` runs
in the background of each process and drops the named accounts (a blocking XREAD on Redis, a 0.1 s
poll of the audit log on SQLite), so a rotated secret or a disabled account is refused fleet-wide at
once. Nothing of this is on the request path. When the store cannot be read the whole cache is
dropped. Details: (docs/accounts.md, "Following the changes").
"""

from __future__ import annotations

import asyncio
import logging

from gateway.store.base import StoreUnavailable
from gateway.store.cache import CachedStore

__all__ = ["RETRY_SECONDS", "WAIT_SECONDS", "follow_changes"]

log = logging.getLogger("smsedge.store")

WAIT_SECONDS = 5.0  # the longest one read waits for a change (Redis blocks within redis.timeout)
RETRY_SECONDS = 1.0  # after a failed read


async def follow_changes(cache: CachedStore, retry: float = RETRY_SECONDS) -> None:
    """Drop the cached accounts other processes announce as changed, until cancelled."""
    cursor, failing = "", False
    while True:
        try:
            cursor, keys = await cache.inner.account_changes(cursor, WAIT_SECONDS)
        except StoreUnavailable as exc:
            if not failing:
                log.warning("account changes not followed while the store is unavailable: %s", exc)
                failing = True
                cache.forget_all()
            await asyncio.sleep(retry)
            continue
        if failing:
            log.info("account changes followed again")
            failing = False
            cache.forget_all()
        for api_key in keys:
            cache.forget_key(api_key)
