"""Following other processes' account changes (``gateway.store.changes``), on a real SQLite file.

Two stores on one file stand for two processes. The first caches an account for a minute (far past
the default bound, so only the follower can make it read again); the second changes the account
and announces it, as the account service does: the first sees the change within a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from gateway.store.audit import AuditEntry
from gateway.store.base import NewAccount, StoreUnavailable
from gateway.store.cache import CachedStore
from gateway.store.changes import follow_changes
from gateway.store.sqlite.store import SQLiteStore

NOW = 1_714_521_600_000


async def until(condition, seconds: float = 2.0) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await condition():
        assert loop.time() - start < seconds, "not within the bound"
        await asyncio.sleep(0.02)
    return loop.time() - start


@pytest.fixture
async def stores(tmp_path) -> AsyncIterator[tuple[CachedStore, SQLiteStore]]:
    """This process's store (its cache trusts an entry for a minute) and another's, on one file."""
    path = str(tmp_path / "shared.db")
    mine, other = CachedStore(SQLiteStore(path), ttl=60), SQLiteStore(path)
    await mine.open()
    await other.open()
    await other.create_account(NewAccount("team", "sk_team", "h", 100, "approved"), NOW)
    yield mine, other
    await mine.close()
    await other.close()


@contextlib.asynccontextmanager
async def following(cache: CachedStore, retry: float = 1.0) -> AsyncIterator[None]:
    follower = asyncio.create_task(follow_changes(cache, retry=retry))
    try:
        yield
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


async def test_an_announced_change_reaches_another_process_cache_within_a_poll(stores):
    mine, other = stores
    async with following(mine):
        assert not (await mine.account_by_key("sk_team")).disabled  # cached for a minute now
        await other.update_account("sk_team", disabled=True)
        await asyncio.sleep(0.3)
        assert not (await mine.account_by_key("sk_team")).disabled  # unannounced: still cached
        await other.append_audit(AuditEntry(NOW, "ops", "disable", "team", "sk_team"))

        async def disabled() -> bool:
            return (await mine.account_by_key("sk_team")).disabled

        assert await until(disabled) < 0.5


async def test_a_follower_that_cannot_read_drops_the_whole_cache_and_goes_on(stores, monkeypatch):
    mine, other = stores
    assert (await mine.account_by_key("sk_team")).balance_milli == 100
    await other.top_up("sk_team", 50)  # unannounced
    real, failures = mine.inner.account_changes, []

    async def failing_once(cursor: str, wait: float) -> tuple[str, list[str]]:
        if not failures:
            failures.append(cursor)
            raise StoreUnavailable("for the test")
        return await real(cursor, wait)

    monkeypatch.setattr(mine.inner, "account_changes", failing_once)
    async with following(mine, retry=0.05):

        async def fresh() -> bool:
            return (await mine.account_by_key("sk_team")).balance_milli == 150

        await until(fresh)
        assert failures == [""]
        await other.update_account("sk_team", verification_status="pending")
        await other.append_audit(AuditEntry(NOW, "ops", "update", "team", "sk_team"))

        async def pending() -> bool:
            return (await mine.account_by_key("sk_team")).verification_status == "pending"

        await until(pending)  # following again after the failure
