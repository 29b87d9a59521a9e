-- Shared by mcp2026.lua and mcp2025.lua (loaded with dofile). wrk runs a script in one Lua state
-- per thread plus one for setup()/done(); counters live in the thread states and are summed in done().
--
-- Env: BENCH_TEXT        text the echo tool is called with (default "hello from wrk"; plain ASCII,
--                        no quotes or backslashes)
--      BENCH_TOOL        the tool's name (default "echo"; a gateway serves it as "<upstream>__echo")
--      BENCH_CHECK_EVERY check the result shape of every Nth 2xx response (default 1 = all;
--                        0 = define no response() callback at all: wrk then only counts
--                        status >= 400 in errors.status)
--      BENCH_CONNECTIONS wrk's -c, needed to undo wrk's coordinated-omission correction (see done())
-- done() prints one line "BENCH_JSON {...}" with counts and latency percentiles (microseconds):
-- "latency_us" as the requests really had them, "latency_us_wrk_corrected" as wrk reports them.

bench = {}
bench.text = os.getenv("BENCH_TEXT") or "hello from wrk"
bench.tool = os.getenv("BENCH_TOOL") or "echo"
bench.check_every = tonumber(os.getenv("BENCH_CHECK_EVERY") or "1")

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function json_string(s)
  s = s:gsub('[%c"\\]', function(c) return escapes[c] or string.format("\\u%04x", c:byte()) end)
  return '"' .. s .. '"'
end

-- Every request gets its own JSON-RPC id: requests share one 2025-era session, and a session
-- must not have two requests with the same id in flight (the SDK leaves all but one unanswered).
function bench.set_call(meta)
  local params = '{"name":' .. json_string(bench.tool) .. ',"arguments":{"text":' .. json_string(bench.text) .. '}'
  if meta then params = params .. ',"_meta":' .. meta end
  bench.body_head = '{"jsonrpc":"2.0","id":'
  bench.body_tail = ',"method":"tools/call","params":' .. params .. '}}'
end

local head = nil
next_id = 0

function request()
  if head == nil then
    -- The request line and headers as wrk would send them, without Content-Length.
    wrk.body = nil
    head = wrk.format():gsub("\r\n$", "")
  end
  next_id = next_id + 1
  local body = bench.body_head .. next_id .. bench.body_tail
  return head .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
end

-- Per-thread counters (globals, so thread:get() can read them). wrk runs -t1 here, so ids are
-- unique across all connections.
responses, non2xx, checked, bad, first_bad = 0, 0, 0, 0, ""

local expected_text = '"' .. bench.text .. '"'
local function result_ok(body)
  return body:find('"result"', 1, true) ~= nil
    and body:find('"isError"%s*:%s*false') ~= nil
    and body:find(expected_text, 1, true) ~= nil
end

if bench.check_every > 0 then
  function response(status, headers, body)
    responses = responses + 1
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_bad == "" then first_bad = status .. " " .. (body or ""):sub(1, 300) end
    elseif responses % bench.check_every == 0 then
      checked = checked + 1
      if not result_ok(body or "") then
        bad = bad + 1
        if first_bad == "" then first_bad = status .. " " .. (body or ""):sub(1, 300) end
      end
    end
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- wrk "corrects" its latency histogram for coordinated omission before done() sees it
-- (stats_correct in wrk.c): every sample n >= 2E, E = duration / (requests / connections), adds
-- synthetic samples at n-E, n-2E, ... while > E. On a busy machine a few stalls then dominate
-- p90/p99. This undoes that exactly (walking buckets from the top down, each original count is
-- the bucket's count minus the originals above it at multiples of E), giving the latencies the
-- requests really had. Needs BENCH_CONNECTIONS = wrk's -c.
local function histogram(latency, duration_us, completed, connections)
  local values, counts = {}, {}
  for i = 1, #latency do
    values[i], counts[i] = latency(i)
  end
  local per_connection = math.floor(completed / connections)
  if per_connection == 0 then return values, counts end
  local e = math.floor(duration_us / per_connection)
  local max, original = values[#values] or 0, {}
  for i = #values, 1, -1 do
    local v, c = values[i], counts[i]
    if e > 0 and v > e then
      local above = v + e
      while above <= max do
        c = c - (original[above] or 0)
        above = above + e
      end
    end
    original[v] = c
    counts[i] = c
  end
  return values, counts
end

local function summarize(values, counts)
  local total, sum, max, min = 0, 0, 0, nil
  for i = 1, #values do
    if counts[i] > 0 then
      total = total + counts[i]
      sum = sum + counts[i] * values[i]
      max = values[i]
      min = min or values[i]
    end
  end
  local function percentile(p)
    local rank, seen = math.floor((p / 100) * total + 0.5 + 0.5), 0
    for i = 1, #values do
      seen = seen + counts[i]
      if seen >= rank and counts[i] > 0 then return values[i] end
    end
    return 0
  end
  return string.format(
    '{"samples":%d,"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}',
    total, min or 0, total > 0 and sum / total or 0, max,
    percentile(50), percentile(90), percentile(99), percentile(99.9))
end

function done(summary, latency, requests)
  local n = { responses = 0, non2xx = 0, checked = 0, bad = 0 }
  local sample = ""
  for _, t in ipairs(threads) do
    for k, _ in pairs(n) do n[k] = n[k] + (t:get(k) or 0) end
    if sample == "" then sample = t:get("first_bad") or "" end
  end
  local e = summary.errors
  local wrk_latency = string.format(
    '{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}',
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9))
  local raw = "null"
  local connections = tonumber(os.getenv("BENCH_CONNECTIONS") or "")
  if connections and summary.requests > 0 then
    raw = summarize(histogram(latency, summary.duration, summary.requests, connections))
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":%s,"latency_us_wrk_corrected":%s,'
      .. '"responses":%d,"non2xx":%d,"checked":%d,"bad":%d,"check_every":%d,"first_bad":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, raw, wrk_latency,
    n.responses, n.non2xx, n.checked, n.bad, bench.check_every, json_string(sample)))
end
