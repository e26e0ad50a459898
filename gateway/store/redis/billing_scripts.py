"""The Lua of billing on Redis: re-pricing by a receipt's count, giving up on receipts, leases, usage.

A record awaiting its receipt is in two sorted sets of its account (one slot, the ``{a:<id>}``
tag): ``unreceipted:<provider>`` by created_ms (what give-up walks) and, while it has a sealed
number, ``pulls:<provider>`` by when to pull its status. The scripts build those names from the
record's key, as ``outbox_scripts`` builds the callback keys. Each is safe to run twice.
"""

from __future__ import annotations

from gateway.store.redis.outbox_scripts import WRITE_EVENT

__all__ = ["GIVE_UP", "RECOUNT", "TAKE_LEASE", "UNWAIT", "USAGE_PAGE"]

# Lua functions for FINALISE and GIVE_UP. ``unwait``: the record at ``key`` (a record-key base plus
# id) awaits no receipt any more: out of both indexes, its sealed number dropped.
UNWAIT = """
local function unwait(key, provider)
  local tag = string.match(key, '^(.*{a:%d+}:)')
  local member = string.format('%015d', tonumber(string.match(key, '(%d+)$')))
  redis.call('ZREM', tag .. 'pulls:' .. provider, member)
  redis.call('ZREM', tag .. 'unreceipted:' .. provider, member)
  redis.call('HDEL', key, 'sealed_phone')
end
"""

# ``recount``: the carrier billed the record at ``key`` as ``theirs`` segments. Once per record
# (``carrier_counted`` marks it): the price per segment it was charged times ``theirs``, the account
# (hash at ``account``) paying the difference as far as its balance goes, or getting it back.
# Returns the gateway's count, or nil when nothing was re-priced.
RECOUNT = """
local function recount(account, key, theirs)
  local r = redis.call('HMGET', key, 'carrier_counted', 'segments', 'price_milli')
  if r[1] or not r[3] then return nil end
  local ours, price = tonumber(r[2] or 1), tonumber(r[3])
  local owed = (ours > 0 and math.floor(price / ours) or 0) * theirs - price
  if owed > 0 then
    owed = math.min(owed, tonumber(redis.call('HGET', account, 'balance_milli')) or 0)
  end
  -- Lua's -0 is "-0", which HINCRBY refuses as not an integer
  if owed ~= 0 then redis.call('HINCRBY', account, 'balance_milli', -owed) end
  redis.call('HSET', key, 'segments', theirs, 'price_milli', price + owed, 'carrier_counted', 1)
  return ours
end
"""

# KEYS: account, unreceipted:<provider>, recs:pending, recs:failed. ARGV: record-key base,
# sent_before_ms, refund (1|0), now_ms, limit, error. The records created before sent_before_ms that
# still await a receipt (the earliest first): marked ``no_receipt`` and out of the indexes; with
# refund also failed with ``error``, refunded what they were charged and moved to recs:failed. Each
# with a callback URL gets its event (no_receipt, or failed). Returns how many. Run twice, it finds
# only records the first run left (never one twice: each leaves the index).
GIVE_UP = (
    WRITE_EVENT
    + UNWAIT
    + """
local base, now, refund = ARGV[1], ARGV[4], ARGV[3] == '1'
local members = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[5])
local credit = 0
for _, member in ipairs(members) do
  local key = base .. tonumber(member)
  local r = redis.call('HMGET', key, 'provider', 'price_milli', 'created_ms')
  unwait(key, r[1])
  redis.call('HSET', key, 'no_receipt', 1, 'updated_ms', now)
  if refund then
    local price = tonumber(r[2]) or 0
    redis.call('HSET', key, 'status', 'failed', 'error', ARGV[6], 'refunded_milli', price, 'price_milli', 0)
    redis.call('ZREM', KEYS[3], member)
    redis.call('ZADD', KEYS[4], r[3], member)
    credit = credit + price
  end
  write_event(key, refund and 'failed' or 'no_receipt', now)
end
if credit > 0 then redis.call('HINCRBY', KEYS[1], 'balance_milli', credit) end
return #members
"""
)

# KEYS: the lease. ARGV: owner, now_ms, until_ms, ttl_ms. Taken if free, expired by the caller's
# clock (as on SQLite; PEXPIRE only cleans up) or the owner's already. Returns 1 if held, else 0.
# Run twice by one owner, it renews its own lease: 1 again.
TAKE_LEASE = """
local held = redis.call('HMGET', KEYS[1], 'owner', 'until')
if held[1] and held[1] ~= ARGV[1] and tonumber(held[2]) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

# KEYS: recs (scored by created_ms). ARGV: record-key base, low, offset, end_ms (excluded), count,
# bucket_ms. One page of the records created in [low, end_ms), ``offset`` of those created at
# ``low`` having been read already: ties sort by member (the padded id, which only grows), so the
# cursor (low, offset) skips exactly what was read. Returns {low, offset, read, {provider, bucket,
# messages, segments, price_milli, refunded_milli, ...}}: the next cursor, and the page's sums.
USAGE_PAGE = """
local base, bucket_ms = ARGV[1], tonumber(ARGV[6])
local low, offset = tonumber(ARGV[2]), tonumber(ARGV[3])
local page = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '(' .. ARGV[4], 'WITHSCORES',
                        'LIMIT', offset, ARGV[5])
local sums, order = {}, {}
for i = 1, #page, 2 do
  local created = tonumber(page[i + 1])
  if created == low then offset = offset + 1 else low, offset = created, 1 end
  local r = redis.call('HMGET', base .. tonumber(page[i]), 'provider', 'segments', 'price_milli',
                       'refunded_milli')
  local bucket = created - created % bucket_ms
  local name = bucket .. '|' .. (r[1] or '')
  local sum = sums[name]
  if not sum then
    sum = {r[1] or '', bucket, 0, 0, 0, 0}
    sums[name] = sum
    order[#order + 1] = name
  end
  sum[3] = sum[3] + 1
  sum[4] = sum[4] + (tonumber(r[2]) or 1)
  sum[5] = sum[5] + (tonumber(r[3]) or 0)
  sum[6] = sum[6] + (tonumber(r[4]) or 0)
end
local flat = {}
for _, name in ipairs(order) do
  for _, value in ipairs(sums[name]) do flat[#flat + 1] = value end
end
return {low, offset, #page / 2, flat}
"""
