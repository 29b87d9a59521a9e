-- wrk script: tools/call echo at 2026-07-28 (stateless; routing headers + params._meta envelope).
--   wrk -t1 -c16 -d5s -s bench/lua/mcp2026.lua http://127.0.0.1:PORT/mcp
-- Env: see common.lua (BENCH_TEXT, BENCH_CHECK_EVERY).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = bench.tool
bench.set_call(
  '{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    .. '"io.modelcontextprotocol/clientCapabilities":{},'
    .. '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"0"}}'
)
