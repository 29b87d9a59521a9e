#!/usr/bin/env node
// TS SDK v1 (@modelcontextprotocol/sdk 1.32.x; speaks <= 2025-11-25 only) against a Streamable HTTP
// MCP server: the "legacy client" of the interop matrix.
//
//   node client_v1.mjs <url> [tool] [argsJSON]
//
// Flow: initialize (+ notifications/initialized) -> tools/list -> tools/call (if a tool is given)
// -> the standalone GET SSE stream -> DELETE (transport.terminateSession()) -> a probe with the
// old session id -> close. The SDK opens the GET stream by itself, fire-and-forget, once the server
// answers notifications/initialized with 202, and exposes no flag for it, so the script records
// every fetch and waits (up to 3 s) for that GET to get its response headers.
// Env: MCP_TOKEN (bearer), MCP_CLIENT_TIMEOUT_MS (default 30000).
//
// Prints ONE JSON object on stdout. Success (exit 0):
//   {ok:true, client, clientVersion, protocolVersion, sessionId, serverInfo, capabilities,
//    tools:[names], call:{name, arguments, result}|null,
//    getStream:{requested, status, contentType},   // status 405 = server offers no GET stream
//    terminate:{requested, status, sessionIdCleared},
//    afterTerminate:{status},                      // a POST ping with the old id; spec says 404
//    transportErrors:[...], transportErrorsAfterTerminate:[...],
//    requests:[{method, status, protocolVersion, sessionId, ...}]}
// A tool result with isError:true is still a successful exchange (exit 0).
// Failure: {ok:false, stage, error, requests} and exit 1 (exit 2 for usage errors).
import { authHeaders, emit, fail, loadDeps, names, parseToolArgs, recordingFetch, startDeadline, waitFor } from './common.mjs';

const [url, tool, argsJson] = process.argv.slice(2);
const USAGE = 'usage: client_v1.mjs <url> [tool] [argsJSON]';

let call;
let target;
try {
  if (!url) throw new Error('missing <url>');
  target = new URL(url);
  call = parseToolArgs(tool, argsJson);
} catch (err) {
  fail('usage', err, { usage: USAGE }, 2);
}

const recorder = recordingFetch();
startDeadline(() => ({ requests: recorder.log }));
const lastOf = (method) => recorder.log.findLast((entry) => entry.method === method);

let stage = 'load';
try {
  const { v1Client, v1Http, version } = await loadDeps();
  const transport = new v1Http.StreamableHTTPClientTransport(target, {
    requestInit: { headers: authHeaders() },
    fetch: recorder.fetch,
    // Do not let a closed GET stream turn into background reconnects while we report.
    reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
  });
  // Errors the transport reports in the background (e.g. a failed GET). After the DELETE the server
  // ends the GET stream, which the SDK reports as an error: those are kept apart.
  const transportErrors = [];
  const errorsAfterTerminate = [];
  let terminated = false;
  const client = new v1Client.Client({ name: 'mcpserve-interop-v1', version: '0.0.1' });
  client.onerror = (err) => (terminated ? errorsAfterTerminate : transportErrors).push(String(err?.message ?? err));
  stage = 'connect';
  await client.connect(transport);
  const sessionId = transport.sessionId ?? null;
  const out = {
    ok: true,
    client: '@modelcontextprotocol/sdk',
    clientVersion: version('@modelcontextprotocol/sdk'),
    protocolVersion: transport.protocolVersion ?? null,
    sessionId,
    serverInfo: client.getServerVersion() ?? null,
    capabilities: client.getServerCapabilities() ?? null,
  };
  stage = 'tools/list';
  out.tools = names((await client.listTools()).tools);
  out.call = null;
  if (call) {
    stage = 'tools/call';
    out.call = { ...call, result: await client.callTool(call) };
  }

  stage = 'get-stream';
  await waitFor(() => lastOf('GET')?.status !== undefined || lastOf('GET')?.error !== undefined, 3000);
  const get = lastOf('GET');
  out.getStream = { requested: get !== undefined, status: get?.status ?? null, contentType: get?.contentType ?? null };
  if (get?.error) out.getStream.error = get.error;

  stage = 'terminate';
  terminated = true;
  await transport.terminateSession();
  const del = lastOf('DELETE');
  out.terminate = { requested: del !== undefined, status: del?.status ?? null, sessionIdCleared: transport.sessionId === undefined };

  out.afterTerminate = null;
  if (sessionId) {
    stage = 'after-terminate';
    const res = await fetch(target, {
      method: 'POST',
      headers: {
        ...authHeaders(),
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'Mcp-Session-Id': sessionId,
        'MCP-Protocol-Version': out.protocolVersion ?? '2025-11-25',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'ping' }),
    });
    await res.body?.cancel();
    out.afterTerminate = { status: res.status };
  }

  stage = 'close';
  await client.close();
  out.transportErrors = transportErrors;
  out.transportErrorsAfterTerminate = errorsAfterTerminate;
  out.requests = recorder.log;
  emit(out);
} catch (err) {
  fail(stage, err, { requests: recorder.log });
}
