-- wrk script: POST a send body to a fresh phone number per request.
-- Arguments (after --): path, first number, api key, api secret, pool, limit.
--   Thread t sends to first + t * 1000000 + n, n = 1, 2, ... (so no two requests share a number),
--   or, with pool > 0, cycles through pool numbers per thread.
--   With limit > 0 each thread stops sending after limit responses; wrk.py then interrupts wrk.
-- done() prints one line "BENCH_JSON {...}" that bench/wrk.py reads.

local threads = {}
local counter, first, pool, limit, seen = 0, 0, 0, 0, 0
local path

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  path = args[1]
  first = tonumber(args[2]) + tid * 1000000
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = args[3]
  wrk.headers["X-API-Secret"] = args[4]
  pool = tonumber(args[5])
  limit = tonumber(args[6])
  if limit == 0 then
    response = nil  -- wrk then skips parsing response bodies for the script
  end
end

function request()
  if path == "/api/account/info" then
    return wrk.format("GET", path)
  end
  counter = counter + 1
  local n = counter
  if pool > 0 then
    n = counter % pool
  end
  local body = string.format(
    '{"phone":"%d","template_id":"123456","params":{"code":"1234"}}', first + n)
  return wrk.format("POST", path, nil, body)
end

function response(status, headers, body)
  seen = seen + 1
  if seen >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
