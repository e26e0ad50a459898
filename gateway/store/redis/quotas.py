"""The counts of the Redis store: each day's acceptances, and the quota's month.

``RedisQuotas`` is the part of :class:`~gateway.store.redis.store.RedisStore` that reads them; they
are written inside RESERVE and SETTLE (``scripts``, ``quota_scripts``). The rules: (docs/quotas.md).
"""

from __future__ import annotations

from redis.typing import EncodableT

from gateway.redis.client import SharedClient
from gateway.redis.health import RedisHealth, guarded
from gateway.store.base import StoreUnavailable
from gateway.store.quotas import Period
from gateway.store.redis.keys import Keys

__all__ = ["RedisQuotas", "period_values"]

_guarded = guarded(StoreUnavailable)


def period_values(counted: Period | None) -> list[EncodableT]:
    """The day and month as RESERVE and SETTLE take them: ``""`` for none."""
    return ["", ""] if counted is None else [counted.day, counted.month]


class RedisQuotas:
    """Mixed into :class:`~gateway.store.redis.store.RedisStore`: uses its client, keys, health."""

    client: SharedClient
    keys: Keys
    health: RedisHealth

    @_guarded
    async def today_sent(self, account_id: int, day: str) -> int:
        sent = await self.client.hget(self.keys.daily(account_id), day)
        return int(sent) if sent is not None else 0

    @_guarded
    async def month_sent(self, account_id: int, month: str) -> int:
        counted, sent = await self.client.hmget(self.keys.quota(account_id), ["month", "month_sent"])
        return int(sent) if counted == month.encode() and sent is not None else 0
