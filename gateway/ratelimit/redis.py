"""Rate limiting on a shared Redis: one atomic Lua script per decision, on Redis's own clock.

Keys carry one hash tag per account (``{a:42}``) or per number, so every script touches a single
Redis-Cluster slot; they expire once idle (a bucket when it would be full again, a number's history
after its longest window). The per-number scripts of a batch go out in one pipeline, by digest: one
round trip (``gateway.redis.client.Lua``).
Each call takes at most ``redis.timeout``, and none is tried while the shared client knows Redis is
unreachable (``gateway.redis.health``): the policy (``on_backend_error``) then decides at once.
"""

from __future__ import annotations

import asyncio

from redis.typing import EncodableT

from gateway.config.model import WindowConfig
from gateway.ratelimit import (
    WINDOW_ALLOWS,
    BucketDecision,
    LimiterUnavailable,
    Tokens,
    WindowDecision,
    bucket_decision,
)
from gateway.redis.client import Lua, SharedClient
from gateway.redis.health import guarded

__all__ = ["RedisLimiter"]

# KEYS[1] bucket; ARGV rate, burst, cost. Returns {allowed, tokens as text}.
BUCKET_SCRIPT = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= math.min(cost, burst) then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) / rate * 1000)))
return {allowed, string.format('%.17g', tokens)}
"""

# KEYS[1] a number's history (sorted set of hit times in ms); ARGV member, then limit/seconds pairs.
# Returns {allowed, retry_after_ms}.
WINDOWS_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local longest = 0
for i = 2, #ARGV, 2 do longest = math.max(longest, tonumber(ARGV[i + 1]) * 1000) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
local wait = 0
for i = 2, #ARGV, 2 do
  local limit, span = tonumber(ARGV[i]), tonumber(ARGV[i + 1]) * 1000
  local inside = redis.call('ZCOUNT', KEYS[1], '(' .. (now - span), '+inf')
  if inside >= limit then
    local keep = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - span), '+inf',
                            'WITHSCORES', 'LIMIT', inside - limit, 1)
    wait = math.max(wait, tonumber(keep[2]) + span - now)
  end
end
if wait > 0 then return {0, wait} end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], longest)
return {1, 0}
"""

_guarded = guarded(LimiterUnavailable)


class RedisLimiter:
    def __init__(self, client: SharedClient, key_prefix: str) -> None:
        self._client = client
        self.health = client.health
        self._prefix = key_prefix
        self._bucket = Lua(client, BUCKET_SCRIPT)
        self._windows = Lua(client, WINDOWS_SCRIPT)

    @_guarded
    async def take(self, account_id: int, rate: float, burst: int, cost: int) -> BucketDecision:
        key = f"{self._prefix}{{a:{account_id}}}:bucket"
        allowed, tokens = await self._bucket((key,), (repr(rate), burst, cost))
        return bucket_decision(float(tokens), bool(allowed), rate, burst, cost)

    def _phone(self, phone_hash: str) -> str:
        return f"{self._prefix}{{p:{phone_hash}}}:hits"

    @_guarded
    async def hit(
        self, phone_hashes: list[str], windows: tuple[WindowConfig, ...], hit_id: str
    ) -> list[WindowDecision]:
        args: list[EncodableT] = [hit_id]
        for window in windows:
            args += [window.limit, window.seconds]
        replies = await self._windows.many(
            [((self._phone(phone_hash),), args) for phone_hash in phone_hashes]
        )
        return [WindowDecision(bool(allowed), -(-int(wait) // 1000)) for allowed, wait in replies]

    async def decide(
        self, tokens: Tokens, phone_hashes: list[str], windows: tuple[WindowConfig, ...], hit_id: str
    ) -> tuple[BucketDecision, list[WindowDecision]]:
        """The bucket and the windows in one round trip: both scripts are asked for in the same
        loop turn, so the client sends them in one pipeline (their keys are in different slots,
        so no one script can hold them in a cluster). The windows of a request the bucket refused
        are taken back (rare: a refusal is the one case that costs a second round trip)."""
        take = self.take(tokens.account_id, tokens.rate, tokens.burst, tokens.cost)
        if not windows or not phone_hashes:
            return await take, [WINDOW_ALLOWS] * len(phone_hashes)
        bucket, hits = await asyncio.gather(
            take, self.hit(phone_hashes, windows, hit_id), return_exceptions=True
        )
        if isinstance(bucket, BaseException):
            raise bucket
        if not bucket.allowed:
            if not isinstance(hits, BaseException):
                counted = [
                    phone_hash for phone_hash, hit in zip(phone_hashes, hits, strict=True) if hit.allowed
                ]
                if counted:
                    await self.release(counted, hit_id)
            return bucket, [WINDOW_ALLOWS] * len(phone_hashes)
        if isinstance(hits, BaseException):
            raise hits
        return bucket, hits

    @_guarded
    async def release(self, phone_hashes: list[str], hit_id: str) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for phone_hash in phone_hashes:
                pipe.zrem(self._phone(phone_hash), hit_id)
            await pipe.execute()

    @_guarded
    async def ping(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        """The client belongs to the app (it may serve other parts too)."""
