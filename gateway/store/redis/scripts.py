"""The Lua scripts of the Redis store: each change that spans keys runs as one atomic script.

Redis runs a script without interleaving other commands, which makes the balance check-and-debit
race-free across instances; every script touches the keys of ONE Cluster slot. The client retries a
command once after a connection error, so every script that moves money or state is safe to run
twice. Slots, encodings and ordering: (docs/stores.md, "Redis").
"""

from __future__ import annotations

import dataclasses

from gateway.store.records import Record
from gateway.store.redis.outbox_scripts import WRITE_EVENT

__all__ = [
    "FINALISE",
    "FIND_RECORDS",
    "IDEMPOTENCY_CLAIM",
    "IDEMPOTENCY_FINISH",
    "IDEMPOTENCY_RELEASE",
    "INDEX_PARKED",
    "LINK_RECEIPT",
    "PARK_RECEIPT",
    "PROBE_WRITE",
    "RECORDS",
    "RECORD_FIELDS",
    "RESERVE",
    "SETTLE",
    "TOP_UP",
]

#: The record-hash fields the RECORDS script returns: those of :class:`~gateway.store.base.Record`, in order.
RECORD_FIELDS = tuple(field.name for field in dataclasses.fields(Record))

# KEYS: account, msg, recs, recs:pending. ARGV: record-key base, now_ms, then 7 per record:
# message_id, phone (masked), template_id, provider, price_milli, phone_hash, callback_url?.
# Returns {1, balance, total_sent, writes} (what the account holds now, and its count of writes, so
# a cache can tell an older reply from a newer one), or 0 when the account is unknown or short:
# then nothing at all was written (all or nothing). A reserve whose first message id is already
# there has run: the client's retry after a lost reply is a no-op.
RESERVE = """
local function reserved()
  local money = redis.call('HMGET', KEYS[1], 'balance_milli', 'total_sent')
  return {1, tonumber(money[1]), tonumber(money[2] or 0), redis.call('HINCRBY', KEYS[1], 'writes', 1)}
end
local base, now = ARGV[1], ARGV[2]
if ARGV[3] and redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return reserved() end
local balance = tonumber(redis.call('HGET', KEYS[1], 'balance_milli'))
if balance == nil then return 0 end
local cost = 0
for i = 3, #ARGV, 7 do cost = cost + tonumber(ARGV[i + 4]) end
if balance < cost then return 0 end
-- free messages take nothing (and Lua's -0 is "-0", which HINCRBY refuses as not an integer)
if cost > 0 then redis.call('HINCRBY', KEYS[1], 'balance_milli', -cost) end
for i = 3, #ARGV, 7 do
  local id = redis.call('HINCRBY', KEYS[1], 'record_seq', 1)
  local member = string.format('%015d', id)
  redis.call('HSET', base .. id, 'id', id, 'message_id', ARGV[i], 'phone', ARGV[i + 1],
             'template_id', ARGV[i + 2], 'provider', ARGV[i + 3], 'price_milli', ARGV[i + 4],
             'phone_hash', ARGV[i + 5], 'status', 'pending', 'created_ms', now, 'updated_ms', now)
  if ARGV[i + 6] ~= '' then redis.call('HSET', base .. id, 'callback_url', string.sub(ARGV[i + 6], 2)) end
  redis.call('HSET', KEYS[2], ARGV[i], id)
  redis.call('ZADD', KEYS[3], now, member)
  redis.call('ZADD', KEYS[4], now, member)
end
return reserved()
"""

# KEYS: account, msg, recs:pending, recs:success, recs:failed, daily. ARGV: record-key base, now_ms,
# day, then 6 per result: message_id, status, provider, price_milli, carrier_id?, error?.
# Only a record nobody settled yet moves (pending, no carrier id, no error): settling twice can
# never refund twice. Returns {waiting, balance, total_sent, writes}: waiting holds {message_id,
# id, phone_hash} of each record waiting for a receipt under that carrier id, also when an earlier
# run settled it (linking again is harmless). A record with a callback URL gets its event
# (``outbox_scripts``): accepted, or failed.
SETTLE = (
    WRITE_EVENT
    + """
local base, now, day = ARGV[1], ARGV[2], ARGV[3]
local sets = {pending = KEYS[3], success = KEYS[4], failed = KEYS[5]}
local refund, accepted, waiting = 0, 0, {}
for i = 4, #ARGV, 6 do
  local id = redis.call('HGET', KEYS[2], ARGV[i])
  local key = id and (base .. id)
  local state = id and redis.call('HMGET', key, 'status', 'carrier_id', 'error', 'price_milli',
                                  'created_ms', 'phone_hash', 'callback_url')
  if state and state[1] == 'pending' and not state[2] and not state[3] then
    local status, carrier, err = ARGV[i + 1], ARGV[i + 4], ARGV[i + 5]
    redis.call('HSET', key, 'status', status, 'provider', ARGV[i + 2], 'price_milli', ARGV[i + 3],
               'updated_ms', now)
    if carrier ~= '' then redis.call('HSET', key, 'carrier_id', string.sub(carrier, 2)) end
    if err ~= '' then redis.call('HSET', key, 'error', string.sub(err, 2)) end
    if state[7] then write_event(key, status == 'failed' and 'failed' or 'accepted', now) end
    if status ~= 'pending' then
      local member = string.format('%015d', tonumber(id))
      redis.call('ZREM', KEYS[3], member)
      redis.call('ZADD', sets[status], state[5], member)
    elseif carrier ~= '' then
      waiting[#waiting + 1] = {ARGV[i], id, state[6]}
    end
    refund = refund + tonumber(state[4]) - tonumber(ARGV[i + 3])
    if status ~= 'failed' then accepted = accepted + 1 end
  elseif state and state[1] == 'pending' and state[2] and 'v' .. state[2] == ARGV[i + 4] then
    waiting[#waiting + 1] = {ARGV[i], id, state[6]}
  end
end
local balance = redis.call('HINCRBY', KEYS[1], 'balance_milli', refund)
local total = redis.call('HINCRBY', KEYS[1], 'total_sent', accepted)
if accepted > 0 then redis.call('HINCRBY', KEYS[6], day, accepted) end
return {waiting, balance, total, redis.call('HINCRBY', KEYS[1], 'writes', 1)}
"""
)

# KEYS: recs:pending, recs:success, recs:failed. ARGV: record-key base, now_ms, then 3 per
# receipt: record id, final status, error?. Only a pending record moves: the first final word
# wins, duplicates and contradictions are no-ops. Never refunds. Returns how many records changed.
# A record with a callback URL gets its event: delivered, or failed.
FINALISE = (
    WRITE_EVENT
    + """
local base, now = ARGV[1], ARGV[2]
local sets = {success = KEYS[2], failed = KEYS[3]}
local changed = 0
for i = 3, #ARGV, 3 do
  local key = base .. ARGV[i]
  local state = redis.call('HMGET', key, 'status', 'created_ms', 'callback_url')
  if state[1] == 'pending' then
    redis.call('HSET', key, 'status', ARGV[i + 1], 'updated_ms', now)
    if ARGV[i + 2] ~= '' then
      redis.call('HSET', key, 'error', string.sub(ARGV[i + 2], 2))
    else
      redis.call('HDEL', key, 'error')
    end
    local member = string.format('%015d', tonumber(ARGV[i]))
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZADD', sets[ARGV[i + 1]], state[2], member)
    if state[3] then write_event(key, ARGV[i + 1] == 'success' and 'delivered' or 'failed', now) end
    changed = changed + 1
  end
end
return changed
"""
)

# KEYS: one receipt identity's match set and early key. ARGV: parked value
# ("received_ms|delivered|error?"), now_ms, ttl_ms. Returns {members, parked_ms}: the
# "account:record" members the receipt names, and 0; or, when there are none, {} and the receipt
# time of the one now parked (a fresh one replaces only a stale one), for INDEX_PARKED.
PARK_RECEIPT = """
local found = redis.call('SMEMBERS', KEYS[1])
if #found > 0 then return {found, 0} end
local old = redis.call('GET', KEYS[2])
local since = tonumber(ARGV[2]) - tonumber(ARGV[3])
local received = old and tonumber(string.match(old, '^(%d+)'))
if received and received >= since then return {found, received} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return {found, tonumber(ARGV[2])}
"""

# KEYS: the global index of parked receipts (early key → receipt time). ARGV: cap, the oldest
# receipt time still kept, then 2 per receipt just parked: receipt time, early key. Forgets entries
# past the TTL (their keys have expired), adds the new ones, and returns the early keys of the
# oldest beyond ``cap``, removed from the index: the caller deletes them. A global key of its own,
# alone in this script (other slots than the receipts'): running it twice only re-adds entries.
INDEX_PARKED = """
local index = KEYS[1]
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ARGV[2])
for i = 3, #ARGV, 2 do redis.call('ZADD', index, ARGV[i], ARGV[i + 1]) end
local over = redis.call('ZCARD', index) - tonumber(ARGV[1])
if over <= 0 then return {} end
local dropped = redis.call('ZRANGE', index, 0, over - 1)
redis.call('ZREMRANGEBYRANK', index, 0, over - 1)
return dropped
"""

# KEYS: the match set and early key of one receipt identity. ARGV: "account:record", grace_ms.
# Settle calls this after giving the record its carrier id: from here on receipts find the record,
# and one that came before is handed back to be applied now. Running on the same slot as
# PARK_RECEIPT, the two serialise: a receipt is either parked before or matched after. The parked
# receipt is left to expire after a short grace rather than deleted, so that a retry of this
# script after a lost reply still gets it (applying it twice is a no-op).
LINK_RECEIPT = """
redis.call('SADD', KEYS[1], ARGV[1])
local early = redis.call('GET', KEYS[2])
if early then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return early
"""

# KEYS: account, the top-up's operation key. ARGV: amount_milli, ttl_ms. Credits once per
# operation id, so the client's retry after a lost reply cannot credit twice. Returns the balance
# the credit set, as text (what an audit entry's "after" must be, whatever else ran meanwhile), or
# the integer 0 for an unknown account.
TOP_UP = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  return redis.call('HINCRBY', KEYS[1], 'balance_milli', ARGV[1]) .. ''
end
return redis.call('HGET', KEYS[1], 'balance_milli')
"""

# KEYS: the readiness probe's key. ARGV: now_ms. A write of the probe's own, kept a minute (a script,
# so that with redis.wait_replicas it is confirmed as a store write is).
PROBE_WRITE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', 60000)
return 1
"""

# KEYS: the sorted set to read (recs or recs:<status>). ARGV: record-key base, min, max, offset,
# count. One snapshot for the page and its exact total. Returns {total, {fields...}...}.
RECORDS = """
local base = ARGV[1]
local total = redis.call('ZCOUNT', KEYS[1], ARGV[2], ARGV[3])
local members = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[3], ARGV[2], 'LIMIT', ARGV[4], ARGV[5])
local rows = {}
for _, member in ipairs(members) do
  rows[#rows + 1] = redis.call('HMGET', base .. tonumber(member), __FIELDS__)
end
return {total, rows}
""".replace("__FIELDS__", ", ".join(f"'{name}'" for name in RECORD_FIELDS))

# KEYS: the account's msg hash. ARGV: record-key base, then message ids. Returns the fields of each
# record found, in the order asked; unknown ids are left out.
FIND_RECORDS = """
local base, rows = ARGV[1], {}
for i = 2, #ARGV do
  local id = redis.call('HGET', KEYS[1], ARGV[i])
  if id then rows[#rows + 1] = redis.call('HMGET', base .. id, __FIELDS__) end
end
return rows
""".replace("__FIELDS__", ", ".join(f"'{name}'" for name in RECORD_FIELDS))

# KEYS: one Idempotency-Key's hash. ARGV: fingerprint, token, now_ms, ttl_ms, lease_ms. Expiry and
# the lease are judged by the gateway's clock (``expires``, ``claimed``), PEXPIRE only cleans up.
# Returns {state[, status, body]} or {'stale', seed}. An unfinished claim ``lease_ms`` old is taken
# over: the new token, a fresh ``claimed``, and ``seed`` (the token message ids derive from) kept.
# The same token on an unfinished claim answers what its claim did, so a retry after a lost reply
# is harmless. A claim from before leases (no ``claimed``) dates from ``expires`` less the TTL.
IDEMPOTENCY_CLAIM = """
local held = redis.call('HMGET', KEYS[1], 'fingerprint', 'token', 'status', 'body', 'expires',
                        'claimed', 'seed')
local now = tonumber(ARGV[3])
if not held[1] or tonumber(held[5]) <= now then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'token', ARGV[2],
             'expires', now + tonumber(ARGV[4]), 'claimed', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {'new'}
end
if held[1] ~= ARGV[1] then return {'conflict'} end
if held[3] then return {'replay', held[3], held[4]} end
if held[2] == ARGV[2] then
  if held[7] then return {'stale', held[7]} end
  return {'new'}
end
local claimed = tonumber(held[6]) or (tonumber(held[5]) - tonumber(ARGV[4]))
if claimed + tonumber(ARGV[5]) > now then return {'pending'} end
local seed = held[7] or held[2]
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'claimed', now, 'seed', seed)
return {'stale', seed}
"""

# KEYS: one Idempotency-Key's hash. ARGV: token, status, body. Only the claim's owner, once;
# the key keeps its expiry.
IDEMPOTENCY_FINISH = """
local held = redis.call('HMGET', KEYS[1], 'token', 'status')
if held[1] == ARGV[1] and not held[2] then
  redis.call('HSET', KEYS[1], 'status', ARGV[2], 'body', ARGV[3])
end
return 0
"""

# KEYS: one Idempotency-Key's hash. ARGV: token. Drops the owner's unfinished claim only.
IDEMPOTENCY_RELEASE = """
local held = redis.call('HMGET', KEYS[1], 'token', 'status')
if held[1] == ARGV[1] and not held[2] then redis.call('DEL', KEYS[1]) end
return 0
"""
