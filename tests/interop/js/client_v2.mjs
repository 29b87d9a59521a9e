#!/usr/bin/env node
// TS SDK v2 (@modelcontextprotocol/client 2.4.x) against a Streamable HTTP MCP server.
//
//   node client_v2.mjs <url> <legacy|auto|pin|pin=<version>> [tool] [argsJSON]
//
// mode: legacy = 2025-era initialize only (the SDK's default); auto = probe server/discover and fall
// back to initialize; pin = modern era pinned to 2026-07-28 (no probe). Env: MCP_TOKEN (bearer),
// MCP_CLIENT_TIMEOUT_MS (default 30000).
//
// Prints ONE JSON object on stdout. Success (exit 0):
//   {ok:true, client, clientVersion, mode, protocolVersion, era, sessionId, serverInfo,
//    capabilities, tools:[names], call:{name, arguments, result}|null, resources:[uris]|null,
//    prompts:[names]|null, requests:[{method, status, protocolVersion, mcpMethod, ...}]}
// A tool result with isError:true is still a successful exchange (exit 0): check call.result.isError.
// Failure: {ok:false, stage, error:{name, message, code?, status?, ...}, requests} and exit 1
// (exit 2 for usage errors).
import { authHeaders, emit, fail, loadDeps, names, parseToolArgs, recordingFetch, startDeadline } from './common.mjs';

const [url, modeArg, tool, argsJson] = process.argv.slice(2);
const USAGE = 'usage: client_v2.mjs <url> <legacy|auto|pin|pin=<version>> [tool] [argsJSON]';

function parseMode(mode) {
  if (mode === 'legacy' || mode === 'auto') return mode;
  if (mode === 'pin') return { pin: '2026-07-28' };
  if (mode?.startsWith('pin=')) return { pin: mode.slice(4) };
  throw new Error(`unknown mode ${JSON.stringify(mode)}`);
}

let mode;
let call;
let target;
try {
  if (!url || !modeArg) throw new Error('missing arguments');
  target = new URL(url);
  mode = parseMode(modeArg);
  call = parseToolArgs(tool, argsJson);
} catch (err) {
  fail('usage', err, { usage: USAGE }, 2);
}

const recorder = recordingFetch();
startDeadline(() => ({ requests: recorder.log }));

let stage = 'load';
try {
  const { v2, version } = await loadDeps();
  const transport = new v2.StreamableHTTPClientTransport(target, {
    requestInit: { headers: authHeaders() },
    fetch: recorder.fetch,
  });
  const client = new v2.Client({ name: 'mcpserve-interop-v2', version: '0.0.1' }, { versionNegotiation: { mode } });
  stage = 'connect';
  await client.connect(transport);
  const out = {
    ok: true,
    client: '@modelcontextprotocol/client',
    clientVersion: version('@modelcontextprotocol/client'),
    mode: modeArg,
    protocolVersion: client.getNegotiatedProtocolVersion() ?? transport.protocolVersion ?? null,
    era: client.getProtocolEra() ?? null,
    sessionId: transport.sessionId ?? null,
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
  out.resources = null;
  if (out.capabilities?.resources) {
    stage = 'resources/list';
    out.resources = names((await client.listResources()).resources, 'uri');
  }
  out.prompts = null;
  if (out.capabilities?.prompts) {
    stage = 'prompts/list';
    out.prompts = names((await client.listPrompts()).prompts);
  }
  stage = 'close';
  await client.close();
  out.requests = recorder.log;
  emit(out);
} catch (err) {
  fail(stage, err, { mode: modeArg, requests: recorder.log });
}
