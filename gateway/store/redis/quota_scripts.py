"""The Lua of quotas on Redis: counting inside RESERVE, giving back inside SETTLE.

An account's counts are the hash ``<prefix>{a:<id>}:quota`` (its slot): ``day`` and ``day_sent``,
``month`` and ``month_sent``, the period last counted and what it holds; its limits are fields of
the account's hash (``daily_limit``, ``monthly_limit``; absent: none). A count of an earlier period
starts again from 0; a reserve that names an earlier period than the one counted (another
gateway's clock a moment behind at midnight) counts in the later one rather than going back.
The rules: (docs/quotas.md).
"""

from __future__ import annotations

__all__ = ["COUNT", "GIVE_BACK"]

# count(key, day, month, n, daily limit, monthly limit): n messages counted in the day and month,
# or, if they would pass a limit, nothing counted and the limit's name (the monthly one first:
# waiting for the next day would not help). Limits are strings (or false: none).
COUNT = """
local function count(key, day, month, n, daily, monthly)
  local q = redis.call('HMGET', key, 'day', 'day_sent', 'month', 'month_sent')
  local d, m = 0, 0
  if q[1] and q[1] >= day then day, d = q[1], tonumber(q[2]) end
  if q[3] and q[3] >= month then month, m = q[3], tonumber(q[4]) end
  if monthly and m + n > tonumber(monthly) then return 'monthly' end
  if daily and d + n > tonumber(daily) then return 'daily' end
  redis.call('HSET', key, 'day', day, 'day_sent', d + n, 'month', month, 'month_sent', m + n)
  return nil
end
"""

# give_back(key, day, month, n): n refusals no longer count in the day and month their reserve
# counted them in, where that is still the period counted.
GIVE_BACK = """
local function give_back(key, day, month, n)
  local q = redis.call('HMGET', key, 'day', 'day_sent', 'month', 'month_sent')
  if q[1] == day then redis.call('HSET', key, 'day_sent', math.max(0, tonumber(q[2]) - n)) end
  if q[3] == month then redis.call('HSET', key, 'month_sent', math.max(0, tonumber(q[4]) - n)) end
end
"""
