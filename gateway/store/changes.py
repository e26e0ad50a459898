"""Following the account changes other processes announce, so this process's cache drops them.

Every change through the account service (``gateway.admin.service``: the admin API and the
``accounts`` CLI alike) is announced through the store (``Store.append_audit``). Each gateway
process runs :func:`follow_changes` in the background, which drops the announced accounts from its
cache (``gateway.store.cache``): on Redis a blocking XREAD on one stream, so a rotated secret or a
disabled account is refused by every process as soon as the change is made; on SQLite a poll of the
audit log every 0.1 s. Nothing of this is on the request path: a request still does one dict lookup.

When the store cannot be read, this process may miss announcements: it drops its whole cache (and
again once the store answers), and until then the cache's own bound (``ACCOUNT_CACHE_TTL``) holds.
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
