-- wrk script for the benchmark (tests/bench/bench.py). SCENARIO selects the request:
--   post   POST /api/randomizes with a distinct word per request
--   post-key  the same, each with a fresh Idempotency-Key (SPEC §13)
--   get    GET /api/randomizes/{id} over the stored ids listed in IDS_FILE, or over
--          1..RECORDS when the ids are dense (a bulk-seeded table)
--   list   GET /api/randomizes?page=1
--   health GET /healthz
-- `done` prints one JSON line the driver parses.
local scenario = os.getenv("SCENARIO") or "health"
local ids = {}
local records = tonumber(os.getenv("RECORDS") or "0")
local counter = 0
local threads = {}
local started = os.time()

-- `thread_id` is a global of each thread's own Lua state, set here before it starts
-- (a file-level local would be 0 in every thread, and two threads would send the same
-- words and the same idempotency keys).
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + thread_id)
  local path = os.getenv("IDS_FILE")
  if path then
    for line in io.lines(path) do
      table.insert(ids, line)
    end
  end
  if #ids == 0 and records == 0 then
    ids = {"1"}
  end
end

function request()
  counter = counter + 1
  if scenario == "post" then
    local body = string.format('{"word":"bench%dw%d"}', thread_id, counter)
    return wrk.format("POST", "/api/randomizes", {["Content-Type"] = "application/json"}, body)
  elseif scenario == "post-key" then
    local body = string.format('{"word":"bench%dk%d"}', thread_id, counter)
    local key = string.format("bench-%d-%d-%d", started, thread_id, counter)
    return wrk.format("POST", "/api/randomizes",
      {["Content-Type"] = "application/json", ["Idempotency-Key"] = key}, body)
  elseif scenario == "get" then
    local id = records > 0 and math.random(1, records) or ids[math.random(1, #ids)]
    return wrk.format("GET", "/api/randomizes/" .. id)
  elseif scenario == "list" then
    return wrk.format("GET", "/api/randomizes?page=1")
  end
  return wrk.format("GET", "/healthz")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"non_2xx":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
