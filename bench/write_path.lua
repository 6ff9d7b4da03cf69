-- wrk script for the write path: each thread holds one connection and takes its own subjects through the
-- forms in order (consent, screening, randomization), each form with a fresh Idempotency-Key; a thread stops
-- when its subjects are done. `bench/write_path.py` writes the plan (sites, tokens, forms' bodies,
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
  current_key = nil
  statuses = {}
  math.randomseed(id * 7919 + os.time())
end

local function key()
  return string.format("bench-%d-%d-%08x%08x", id, sent, math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
end

-- The next request is the current form of the current subject; only an answer moves on. wrk calls request()
-- once more than it sends (to check the script) and again after a reconnect or a 503: neither loses a form,
-- and a request sent again keeps its key (a retry, as a site app's).
function request()
  if index >= plan.subjects then
    wrk.thread:stop()
  end
  if not current_key then
    current_key = key()
    sent = sent + 1
  end
  local site = plan.sites[(index % #plan.sites) + 1]
  local subject = string.format("%s-%03d", site, math.floor(index / #plan.sites) + 1)
  local name = plan.forms[form]
  local headers = {
    ["Authorization"] = "Bearer " .. plan.tokens[site],
    ["Idempotency-Key"] = current_key,
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", "/v1/sites/" .. site .. "/subjects/" .. subject .. "/" .. name, headers, plan.bodies[name])
end

-- Answers that mean "not now" are retried with the same key, as a site app does; any other answer moves on.
local RETRIED = {[502] = true, [503] = true, [504] = true}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if RETRIED[status] then
    return
  end
  current_key = nil
  form = form + 1
  if form > #plan.forms then
    form = 1
    index = index + plan.threads
  end
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
