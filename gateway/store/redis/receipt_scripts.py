"""The Lua of delivery receipts on Redis: parking a receipt that names no record yet, linking a
settled record to its receipts, finalising (and re-pricing) the records a receipt names.

A receipt identity's scripts touch its own two keys (one slot, ``Keys.receipt``); FINALISE runs per
account, in the account's slot. How they serialise: (docs/sending.md, "On Redis").
"""

from __future__ import annotations

from gateway.store.redis.billing_scripts import RECOUNT, UNWAIT
from gateway.store.redis.outbox_scripts import WRITE_EVENT

__all__ = ["FINALISE", "INDEX_PARKED", "LINK_RECEIPT", "PARK_RECEIPT"]

# KEYS: account, recs:pending, recs:success, recs:failed. ARGV: record-key base, now_ms, then 4
# per receipt: record id, final status, error?, the carrier's segments (0: it gave none). A count
# re-prices the record first (``billing_scripts.recount``: once, whatever its status), so that the
# event below carries the new price. Then only a pending record moves: the first final word wins,
# duplicates and contradictions are no-ops; it awaits no receipt any more (``unwait``). Never
# refunds. Returns {changed, {ours, theirs, ...}}: how many records changed, and the counts of each
# record re-priced to another count. A record with a callback URL gets its event: delivered, or failed.
FINALISE = (
    WRITE_EVENT
    + UNWAIT
    + RECOUNT
    + """
local base, now = ARGV[1], ARGV[2]
local sets = {success = KEYS[3], failed = KEYS[4]}
local changed, recounted = 0, {}
for i = 3, #ARGV, 4 do
  local key = base .. ARGV[i]
  local theirs = tonumber(ARGV[i + 3])
  local ours = theirs > 0 and recount(KEYS[1], key, theirs)
  if ours and ours ~= theirs then
    recounted[#recounted + 1] = ours
    recounted[#recounted + 1] = theirs
  end
  local state = redis.call('HMGET', key, 'status', 'created_ms', 'callback_url', 'provider')
  if state[1] == 'pending' then
    redis.call('HSET', key, 'status', ARGV[i + 1], 'updated_ms', now)
    if ARGV[i + 2] ~= '' then
      redis.call('HSET', key, 'error', string.sub(ARGV[i + 2], 2))
    else
      redis.call('HDEL', key, 'error')
    end
    local member = string.format('%015d', tonumber(ARGV[i]))
    redis.call('ZREM', KEYS[2], member)
    redis.call('ZADD', sets[ARGV[i + 1]], state[2], member)
    unwait(key, state[4])
    if state[3] then write_event(key, ARGV[i + 1] == 'success' and 'delivered' or 'failed', now) end
    changed = changed + 1
  end
end
return {changed, recounted}
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
