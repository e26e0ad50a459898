"""The Lua scripts of the Redis store: each change that spans keys runs as one atomic script.

Redis runs a script without interleaving other commands, which makes the balance check-and-debit
race-free across instances; every script touches the keys of ONE Cluster slot. The client retries a
command once after a connection error, so every script that moves money or state is safe to run
twice. Slots, encodings and ordering: (docs/stores.md, "Redis"). The receipts' scripts are in
``receipt_scripts``, billing's in ``billing_scripts``, the callback outbox's in ``outbox_scripts``.
"""

from __future__ import annotations

import dataclasses

from gateway.store.records import Record
from gateway.store.redis.outbox_scripts import WRITE_EVENT
from gateway.store.redis.quota_scripts import COUNT, GIVE_BACK

__all__ = [
    "FIND_RECORDS",
    "IDEMPOTENCY_CLAIM",
    "IDEMPOTENCY_FINISH",
    "IDEMPOTENCY_RELEASE",
    "PROBE_WRITE",
    "RECORDS",
    "RECORD_FIELDS",
    "RESERVE",
    "SETTLE",
    "TOP_UP",
]

#: The record-hash fields the RECORDS script returns: those of :class:`~gateway.store.base.Record`, in order.
RECORD_FIELDS = tuple(field.name for field in dataclasses.fields(Record))

# KEYS: account, msg, recs, recs:pending, quota. ARGV: record-key base, now_ms, day and month to
# count in ('' and '': none, ``quota_scripts``), then 8 per record: message_id, phone (masked),
# template_id, provider, price_milli, phone_hash, callback_url?, segments.
# Returns {1, balance, total_sent, writes} (what the account holds now, and its count of writes, so
# a cache can tell an older reply from a newer one), 0 when the account is unknown or short, or the
# limit the records would pass ('daily' or 'monthly'): then nothing at all was written (all or
# nothing). A reserve whose first message id is already there has run: the client's retry after a
# lost reply is a no-op.
RESERVE = (
    COUNT
    + """
local function reserved()
  local money = redis.call('HMGET', KEYS[1], 'balance_milli', 'total_sent')
  return {1, tonumber(money[1]), tonumber(money[2] or 0), redis.call('HINCRBY', KEYS[1], 'writes', 1)}
end
local base, now = ARGV[1], ARGV[2]
if ARGV[5] and redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then return reserved() end
local account = redis.call('HMGET', KEYS[1], 'balance_milli', 'daily_limit', 'monthly_limit')
local balance = tonumber(account[1])
if balance == nil then return 0 end
local cost = 0
for i = 5, #ARGV, 8 do cost = cost + tonumber(ARGV[i + 4]) end
if balance < cost then return 0 end
if ARGV[3] ~= '' then
  local refused = count(KEYS[5], ARGV[3], ARGV[4], (#ARGV - 4) / 8, account[2], account[3])
  if refused then return refused end
end
-- free messages take nothing (and Lua's -0 is "-0", which HINCRBY refuses as not an integer)
if cost > 0 then redis.call('HINCRBY', KEYS[1], 'balance_milli', -cost) end
for i = 5, #ARGV, 8 do
  local id = redis.call('HINCRBY', KEYS[1], 'record_seq', 1)
  local member = string.format('%015d', id)
  redis.call('HSET', base .. id, 'id', id, 'message_id', ARGV[i], 'phone', ARGV[i + 1],
             'template_id', ARGV[i + 2], 'provider', ARGV[i + 3], 'price_milli', ARGV[i + 4],
             'phone_hash', ARGV[i + 5], 'status', 'pending', 'created_ms', now, 'updated_ms', now,
             'segments', ARGV[i + 7])
  if ARGV[i + 6] ~= '' then redis.call('HSET', base .. id, 'callback_url', string.sub(ARGV[i + 6], 2)) end
  redis.call('HSET', KEYS[2], ARGV[i], id)
  redis.call('ZADD', KEYS[3], now, member)
  redis.call('ZADD', KEYS[4], now, member)
end
return reserved()
"""
)

# KEYS: account, msg, recs:pending, recs:success, recs:failed, daily, quota. ARGV: record-key base,
# now_ms, day, the day and month the reserve counted in ('' and '': none), then 10 per result:
# message_id, status, provider, price_milli, carrier_id?, error?, segments, sealed_phone?,
# pull_at_ms ('' for none), carrier_counted (1|0). Refusals are given back to the reserve's count.
# Only a record nobody settled yet moves (pending, no carrier id, no error): settling twice can
# never refund twice. A refusal keeps what was reserved as ``refunded_milli``. A pending record with
# a pull time awaits its receipt: indexed for give-up and, with its sealed number, for the status
# pull (``billing_scripts``; the base less its "r:" is the account's tag). Returns {waiting, balance,
# total_sent, writes}: waiting holds {message_id, id, phone_hash} of each record waiting for a
# receipt under that carrier id, also when an earlier run settled it (linking again is harmless).
# A record with a callback URL gets its event (``outbox_scripts``): accepted, or failed. A price
# above what was reserved (the carrier billed more segments than counted) is charged as far as the
# balance goes: never below zero.
SETTLE = (
    WRITE_EVENT
    + GIVE_BACK
    + """
local base, now, day = ARGV[1], ARGV[2], ARGV[3]
local tag = string.sub(base, 1, -3)
local sets = {pending = KEYS[3], success = KEYS[4], failed = KEYS[5]}
local refund, accepted, refused, waiting, balance = 0, 0, 0, {}, nil
for i = 6, #ARGV, 10 do
  local id = redis.call('HGET', KEYS[2], ARGV[i])
  local key = id and (base .. id)
  local state = id and redis.call('HMGET', key, 'status', 'carrier_id', 'error', 'price_milli',
                                  'created_ms', 'phone_hash', 'callback_url')
  if state and state[1] == 'pending' and not state[2] and not state[3] then
    local status, provider, carrier, err = ARGV[i + 1], ARGV[i + 2], ARGV[i + 4], ARGV[i + 5]
    local member = string.format('%015d', tonumber(id))
    local price, reserved = tonumber(ARGV[i + 3]), tonumber(state[4])
    if price > reserved then -- the carrier billed more than was reserved: what the balance can pay
      balance = balance or tonumber(redis.call('HGET', KEYS[1], 'balance_milli'))
      price = reserved + math.max(0, math.min(price - reserved, balance + refund))
    end
    redis.call('HSET', key, 'status', status, 'provider', provider, 'price_milli', price,
               'updated_ms', now, 'segments', ARGV[i + 6],
               'refunded_milli', status == 'failed' and state[4] or 0)
    if carrier ~= '' then redis.call('HSET', key, 'carrier_id', string.sub(carrier, 2)) end
    if err ~= '' then redis.call('HSET', key, 'error', string.sub(err, 2)) end
    if ARGV[i + 9] == '1' then redis.call('HSET', key, 'carrier_counted', 1) end
    if state[7] then write_event(key, status == 'failed' and 'failed' or 'accepted', now) end
    if status ~= 'pending' then
      redis.call('ZREM', KEYS[3], member)
      redis.call('ZADD', sets[status], state[5], member)
    else
      if carrier ~= '' then waiting[#waiting + 1] = {ARGV[i], id, state[6]} end
      if ARGV[i + 8] ~= '' then
        redis.call('ZADD', tag .. 'unreceipted:' .. provider, state[5], member)
        if ARGV[i + 7] ~= '' then
          redis.call('HSET', key, 'sealed_phone', string.sub(ARGV[i + 7], 2))
          redis.call('ZADD', tag .. 'pulls:' .. provider, ARGV[i + 8], member)
        end
      end
    end
    refund = refund + reserved - price
    if status ~= 'failed' then accepted = accepted + 1 else refused = refused + 1 end
  elseif state and state[1] == 'pending' and state[2] and 'v' .. state[2] == ARGV[i + 4] then
    waiting[#waiting + 1] = {ARGV[i], id, state[6]}
  end
end
balance = redis.call('HINCRBY', KEYS[1], 'balance_milli', refund)
local total = redis.call('HINCRBY', KEYS[1], 'total_sent', accepted)
if accepted > 0 then redis.call('HINCRBY', KEYS[6], day, accepted) end
if refused > 0 and ARGV[4] ~= '' then give_back(KEYS[7], ARGV[4], ARGV[5], refused) end
return {waiting, balance, total, redis.call('HINCRBY', KEYS[1], 'writes', 1)}
"""
)

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
