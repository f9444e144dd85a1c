-- keyturn's HTTP benchmark requests for wrk: JSON-RPC POSTs, one credential per wrk thread.
--
--   wrk -t16 -c16 -d5s -s benchmarks/rpc.lua http://127.0.0.1:PORT/api/v2 -- REQUESTS [pair]
--
-- REQUESTS is a file written by benchmarks/bench_http.py: line N is thread N's requests, tab
-- separated: the Authorization header ("" for none), then one or more JSON bodies, sent in turn.
-- Run with as many threads as connections: each thread then owns one connection, and its
-- requests reach the server strictly in order (a disable, then the enable, on its own key).
--
-- "pair" (disable, enable, disable...): a refusal of the thread's first request means an earlier
-- run stopped with the key disabled (its last request was still in flight), so the enable that
-- follows puts the thread in step again; that one refusal is counted as a resync, not an error.
-- No other row reads responses, so wrk parses none for them.
--
-- done() prints one line the harness parses: "keyturn-wrk" then requests, seconds, non-2xx
-- answers, socket errors, resyncs, and the 50th and 99th latency percentiles in µs.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

function init(args)
  local path, mode = args[1], args[2]  -- args[0] is the URL
  local n = 0
  local fields
  for line in io.lines(path) do
    if n == index then
      fields = split(line)
    end
    n = n + 1
  end
  assert(fields, "no request line for thread " .. index .. " in " .. path)
  local headers = { ["Content-Type"] = "application/json" }
  if fields[1] ~= "" then
    headers["Authorization"] = fields[1]
  end
  requests = {}
  for i = 2, #fields do
    table.insert(requests, wrk.format("POST", nil, headers, fields[i]))
  end
  turn, resyncs, answered = 0, 0, 0
  if mode == "pair" then
    response = function(status, headers, body)
      answered = answered + 1
      if status ~= 200 and answered == 1 then
        resyncs = resyncs + 1
      end
    end
  end
end

function request()
  turn = turn + 1
  return requests[(turn - 1) % #requests + 1]
end

function done(summary, latency, requests)
  local resynced = 0
  for _, thread in ipairs(threads) do
    resynced = resynced + (thread:get("resyncs") or 0)
  end
  local errors = summary.errors
  io.write(string.format(
    "keyturn-wrk %d %.6f %d %d %d %d %d\n",
    summary.requests,
    summary.duration / 1e6,
    errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    resynced,
    latency:percentile(50),
    latency:percentile(99)
  ))
end
