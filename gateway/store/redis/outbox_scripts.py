"""The Lua of the Redis callback outbox: writing an event inside SETTLE and FINALISE, and the
deliverer's claims, finishes and replays. Every key is the account's (one Cluster slot).

An event's id is ``<account id>-<digest>``, so a finish finds its slot. Per account, under
``<prefix>{a:<id>}:cb:``: ``e:<id>`` (the event), ``rec:<message id>`` (the record's undone
events, oldest first: only the first may be posted), ``pending`` (the claimable firsts, scored by
when due; a claim re-scores its event to its lease's end), ``age`` (every pending event by
creation: the backlog), ``dead`` (by creation). Delivered and stopped events expire after a week.
"""

from __future__ import annotations

__all__ = ["CLAIM", "DEAD_PAGE", "EVENT_FIELDS", "FINISH", "REPLAY", "WRITE_EVENT"]

#: The event-hash fields a claim returns, in ``OutboxEvent``'s order (``api_key`` last, the account's).
EVENT_FIELDS = (
    "event_id",
    "account_id",
    "message_id",
    "sequence",
    "type",
    "url",
    "facts",
    "attempts",
    "created_ms",
    "next_ms",
    "state",
    "last_error",
)
_HMGET_FIELDS = ", ".join(f"'{name}'" for name in EVENT_FIELDS)

# A Lua function prepended to SETTLE and FINALISE: one event of ``kind`` for the record at ``key``
# (a record-key base plus id), if it has a callback URL; its facts are the record as now changed.
WRITE_EVENT = """
local function write_event(key, kind, now)
  local r = redis.call('HMGET', key, 'callback_url', 'message_id', 'phone', 'template_id',
                       'provider', 'status', 'error', 'price_milli', 'segments')
  if not r[1] then return end
  local tag = string.match(key, '^(.*{a:%d+}:)')
  local cb = tag .. 'cb:'
  local seq = redis.call('HINCRBY', key, 'callback_seq', 1)
  local account = string.match(tag, '{a:(%d+)}')
  local id = account .. '-' .. string.sub(redis.sha1hex(key .. '|' .. seq), 1, 32)
  local facts = cjson.encode({phone = r[3], template_id = r[4], provider = r[5], status = r[6],
                              error = r[7] or cjson.null, price_milli = tonumber(r[8]),
                              segments = tonumber(r[9] or 1), occurred_ms = tonumber(now)})
  redis.call('HSET', cb .. 'e:' .. id, 'event_id', id, 'account_id', account,
             'message_id', r[2], 'sequence', seq, 'type', kind, 'url', r[1], 'facts', facts,
             'attempts', 0, 'created_ms', now, 'next_ms', now, 'state', 'pending', 'lease_until', 0)
  redis.call('ZADD', cb .. 'age', now, id)
  if redis.call('RPUSH', cb .. 'rec:' .. r[2], id) == 1 then redis.call('ZADD', cb .. 'pending', now, id) end
end
"""

# KEYS: the account's cb:pending, and its account hash. ARGV: cb prefix, now_ms, lease end, limit,
# token. Returns the claimed events' fields (EVENT_FIELDS) and the account's api_key.
CLAIM = f"""
local cb, limit = ARGV[1], tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, limit)
local key, out = redis.call('HGET', KEYS[2], 'api_key'), {{}}
for _, id in ipairs(due) do
  local e = cb .. 'e:' .. id
  redis.call('HSET', e, 'lease_token', ARGV[5], 'lease_until', ARGV[3])
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  local row = redis.call('HMGET', e, {_HMGET_FIELDS})
  row[#row + 1] = key
  out[#out + 1] = row
end
return out
"""

# KEYS: cb:pending, cb:age, cb:dead. ARGV: cb prefix, event id, token, outcome, next_ms, error?,
# done ttl. Only the lease's holder, only a pending event; ``retry``/``defer`` make it due again,
# the others end it and make the record's next event (if any) claimable; ``stopped`` ends those too.
FINISH = """
local cb, id, outcome = ARGV[1], ARGV[2], ARGV[4]
local e = cb .. 'e:' .. id
local held = redis.call('HMGET', e, 'lease_token', 'state', 'message_id', 'created_ms')
if held[1] ~= ARGV[3] or held[2] ~= 'pending' then return 0 end
redis.call('HDEL', e, 'lease_token')
redis.call('HSET', e, 'lease_until', 0)
if outcome ~= 'defer' then
  redis.call('HINCRBY', e, 'attempts', 1)
  if ARGV[6] ~= '' then redis.call('HSET', e, 'last_error', string.sub(ARGV[6], 2)) end
end
if outcome == 'retry' or outcome == 'defer' then
  redis.call('HSET', e, 'next_ms', ARGV[5])
  redis.call('ZADD', KEYS[1], ARGV[5], id)
  return 1
end
local function finish(event, state)
  redis.call('HSET', cb .. 'e:' .. event, 'state', state)
  redis.call('ZREM', KEYS[1], event)
  redis.call('ZREM', KEYS[2], event)
  if state == 'dead' then
    redis.call('ZADD', KEYS[3], redis.call('HGET', cb .. 'e:' .. event, 'created_ms'), event)
  else
    redis.call('PEXPIRE', cb .. 'e:' .. event, ARGV[7])
  end
end
finish(id, outcome)
local list = cb .. 'rec:' .. held[3]
redis.call('LREM', list, 1, id)
if outcome == 'stopped' then
  for _, later in ipairs(redis.call('LRANGE', list, 0, -1)) do
    if ARGV[6] ~= '' then redis.call('HSET', cb .. 'e:' .. later, 'last_error', string.sub(ARGV[6], 2)) end
    finish(later, 'stopped')
  end
  redis.call('DEL', list)
else
  local nxt = redis.call('LINDEX', list, 0)
  if nxt then redis.call('ZADD', KEYS[1], redis.call('HGET', cb .. 'e:' .. nxt, 'next_ms'), nxt) end
end
return 1
"""

# KEYS: cb:dead. ARGV: cb prefix, first, last index. One snapshot: {total, {fields...}...}, newest first.
DEAD_PAGE = f"""
local rows = {{}}
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], ARGV[2], ARGV[3])) do
  rows[#rows + 1] = redis.call('HMGET', ARGV[1] .. 'e:' .. id, {_HMGET_FIELDS})
end
return {{redis.call('ZCARD', KEYS[1]), rows}}
"""

# KEYS: cb:pending, cb:age, cb:dead. ARGV: cb prefix, now_ms. Dead events pending again, due now,
# with a fresh 24 h; each goes back into its record's list in sequence order, and the list's
# first (if not leased) is made the claimable one. Returns how many.
REPLAY = """
local cb, now = ARGV[1], ARGV[2]
local dead = redis.call('ZRANGE', KEYS[3], 0, -1)
local records = {}
for _, id in ipairs(dead) do
  local e = cb .. 'e:' .. id
  redis.call('HSET', e, 'state', 'pending', 'next_ms', now, 'created_ms', now, 'attempts', 0,
             'lease_until', 0)
  redis.call('ZADD', KEYS[2], now, id)
  local mid = redis.call('HGET', e, 'message_id')
  records[mid] = true
  redis.call('RPUSH', cb .. 'rec:' .. mid, id)
end
redis.call('DEL', KEYS[3])
for mid in pairs(records) do
  local list = cb .. 'rec:' .. mid
  local ids = redis.call('LRANGE', list, 0, -1)
  table.sort(ids, function(a, b)
    return tonumber(redis.call('HGET', cb .. 'e:' .. a, 'sequence')) <
           tonumber(redis.call('HGET', cb .. 'e:' .. b, 'sequence'))
  end)
  redis.call('DEL', list)
  redis.call('RPUSH', list, unpack(ids))
  for i, id in ipairs(ids) do
    local until_ = tonumber(redis.call('HGET', cb .. 'e:' .. id, 'lease_until'))
    if i == 1 and until_ <= tonumber(now) then
      redis.call('ZADD', KEYS[1], redis.call('HGET', cb .. 'e:' .. id, 'next_ms'), id)
    elseif until_ <= tonumber(now) then
      redis.call('ZREM', KEYS[1], id)
    end
  end
end
return #dead
"""
