-- wrk script: tools/call echo on an initialized 2025-11-25 session (every connection reuses it).
--   BENCH_SESSION_ID=<id> wrk -t1 -c16 -d5s -s bench/lua/mcp2025.lua http://127.0.0.1:PORT/mcp
-- The harness opens the session first (initialize + notifications/initialized).
-- Env: BENCH_SESSION_ID (required), plus common.lua's (BENCH_TEXT, BENCH_CHECK_EVERY).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local session = os.getenv("BENCH_SESSION_ID")
if session == nil or session == "" then
  io.stderr:write("mcp2025.lua: set BENCH_SESSION_ID to an initialized session id\n")
  os.exit(2)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
wrk.headers["Mcp-Session-Id"] = session
bench.set_call(nil)
