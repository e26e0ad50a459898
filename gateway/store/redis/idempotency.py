"""Idempotency-Key claims on Redis: one hash per key, claimed, finished and released by scripts.

With ``redis.wait_replicas`` a claim and a finish are confirmed by replicas before they are
answered (a claim lost in a failover lets a retry send again); a new claim the replicas did not
confirm is released on the primary, so the retry that its 503 invites is a first attempt.
"""

from __future__ import annotations

import functools

from gateway.redis.client import Lua, SharedClient
from gateway.redis.health import RedisHealth, guarded
from gateway.redis.replicas import NotReplicated
from gateway.store.base import IdempotencyClaim, StoreUnavailable
from gateway.store.redis.keys import Keys
from gateway.store.redis.scripts import IDEMPOTENCY_CLAIM, IDEMPOTENCY_FINISH, IDEMPOTENCY_RELEASE

__all__ = ["RedisIdempotency"]

_guarded = guarded(StoreUnavailable)


class RedisIdempotency:
    """Mixed into :class:`~gateway.store.redis.store.RedisStore`: uses its client, keys, health."""

    client: SharedClient
    keys: Keys
    health: RedisHealth

    @functools.cached_property
    def _idempotency_scripts(self) -> tuple[Lua, Lua, Lua]:
        return (
            Lua(self.client, IDEMPOTENCY_CLAIM, write=True),
            Lua(self.client, IDEMPOTENCY_FINISH, write=True),
            Lua(self.client, IDEMPOTENCY_RELEASE),
        )

    @_guarded
    async def claim_idempotency(
        self, account_id: int, key: str, fingerprint: str, token: str, now_ms: int, ttl_ms: int, lease_ms: int
    ) -> IdempotencyClaim:
        claim, _, release = self._idempotency_scripts
        keys = (self.keys.idempotency(account_id, key),)
        try:
            found = await claim(keys, (fingerprint, token, now_ms, ttl_ms, lease_ms))
        except NotReplicated as exc:
            if exc.reply and exc.reply[0] == b"new":  # claimed on the primary only
                await release(keys, (token,))
            raise
        state = found[0].decode()
        if state == "replay":
            return IdempotencyClaim(state, int(found[1]), bytes(found[2] or b""))
        if state == "stale":
            return IdempotencyClaim(state, previous_token=found[1].decode())
        return IdempotencyClaim(state)

    @_guarded
    async def finish_idempotency(
        self, account_id: int, key: str, token: str, status: int, body: bytes
    ) -> None:
        await self._idempotency_scripts[1]((self.keys.idempotency(account_id, key),), (token, status, body))

    @_guarded
    async def release_idempotency(self, account_id: int, key: str, token: str) -> None:
        await self._idempotency_scripts[2]((self.keys.idempotency(account_id, key),), (token,))
