-- wrk script for the write path: each thread holds one connection and takes its own subjects through the
-- forms in order (consent, screening, randomization), each request with a fresh Idempotency-Key; a thread
-- stops when its subjects are done. `bench/write_path.py` writes the plan (sites, tokens, forms' bodies,
-- subjects, threads) to the file WRK_PLAN names, and prints what `done` writes.

local plan = dofile(os.getenv("WRK_PLAN"))
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  index = id  -- this thread's subjects: id, id + threads, id + 2 * threads, ...
  form = 1
  sent = 0
  statuses = {}
  math.randomseed(id * 7919 + os.time())
end

local function key()
  return string.format("bench-%d-%d-%08x%08x", id, sent, math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
end

function request()
  if index >= plan.subjects then
    wrk.thread:stop()
  end
  local site = plan.sites[(index % #plan.sites) + 1]
  local subject = string.format("%s-%03d", site, math.floor(index / #plan.sites) + 1)
  local name = plan.forms[form]
  local headers = {
    ["Authorization"] = "Bearer " .. plan.tokens[site],
    ["Idempotency-Key"] = key(),
    ["Content-Type"] = "application/json",
  }
  sent = sent + 1
  form = form + 1
  if form > #plan.forms then
    form = 1
    index = index + plan.threads
  end
  return wrk.format("POST", "/v1/sites/" .. site .. "/subjects/" .. subject .. "/" .. name, headers, plan.bodies[name])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[tostring(status)] = (counts[tostring(status)] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', status, n))
  end
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, "mean_ms": %.3f, "statuses": {%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.mean / 1000, table.concat(parts, ", ")))
end
