// Shared plumbing for the scripted interop clients: locating the installed npm packages, the
// one-JSON-object-on-stdout contract, a global deadline, and a fetch wrapper that records every
// HTTP exchange (method, status, MCP headers) so tests can assert on the wire.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

// Libraries must not corrupt stdout: everything but our final JSON object goes to stderr.
for (const level of ['log', 'info', 'debug']) console[level] = (...args) => console.error(...args);

let finished = false;

/** Print `obj` as one JSON line on stdout and exit with `code`. */
export function emit(obj, code = 0) {
  if (finished) return;
  finished = true;
  process.stdout.write(`${JSON.stringify(obj)}\n`, () => process.exit(code));
}

/** Serialize an error (SDK errors carry code/status/data) for the failure object. */
export function describeError(err) {
  if (!(err instanceof Error)) return { message: String(err) };
  const out = { name: err.name, message: err.message };
  for (const key of ['code', 'status', 'data', 'errorDescription']) {
    if (err[key] !== undefined) out[key] = err[key];
  }
  if (err.cause !== undefined) out.cause = describeError(err.cause);
  if (err.errors !== undefined) out.errors = err.errors.map(describeError);
  return out;
}

/** Report a failure (exit 1 by default, 2 for usage errors) with the stage it happened in. */
export function fail(stage, err, extra = {}, code = 1) {
  emit({ ok: false, stage, error: describeError(err), ...extra }, code);
}

/** Exit with an error object if the whole run takes longer than MCP_CLIENT_TIMEOUT_MS (default 30 s). */
export function startDeadline(getExtra = () => ({})) {
  const ms = Number(process.env.MCP_CLIENT_TIMEOUT_MS ?? 30000);
  const timer = setTimeout(() => fail('timeout', new Error(`no result after ${ms} ms`), getExtra()), ms);
  timer.unref();
}

/**
 * Import the npm packages through deps.mjs in the first folder that has them installed:
 * $MCP_INTEROP_JS_DIR, <repo>/.tools/interop-js (scripts/node-tools.sh), or this folder (npm ci here).
 */
export async function loadDeps() {
  const candidates = [process.env.MCP_INTEROP_JS_DIR, join(HERE, '../../../.tools/interop-js'), HERE];
  for (const dir of candidates.filter(Boolean)) {
    if (existsSync(join(dir, 'node_modules/@modelcontextprotocol/client/package.json')) && existsSync(join(dir, 'deps.mjs'))) {
      const deps = await import(pathToFileURL(join(dir, 'deps.mjs')).href);
      const version = (pkg) => JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')).version;
      return { ...deps, version, dir };
    }
  }
  throw new Error(`npm packages not installed (looked in ${candidates.filter(Boolean).join(', ')}); run scripts/node-tools.sh`);
}

/** Parse the optional [tool] [argsJSON] arguments. */
export function parseToolArgs(tool, argsJson) {
  if (!tool) return null;
  let args = {};
  if (argsJson !== undefined) {
    args = JSON.parse(argsJson);
    if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new Error('argsJSON must be a JSON object');
  }
  return { name: tool, arguments: args };
}

/** Request headers for every request: Authorization from $MCP_TOKEN, if set. */
export function authHeaders() {
  return process.env.MCP_TOKEN ? { Authorization: `Bearer ${process.env.MCP_TOKEN}` } : {};
}

/**
 * A fetch that records each exchange: {method, status, contentType, protocolVersion, mcpMethod,
 * mcpName, sessionId (sent), setSessionId (received)}. `pending` holds the in-flight promises.
 */
export function recordingFetch() {
  const log = [];
  const pending = new Set();
  const fetchFn = (input, init = {}) => {
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const entry = { method: (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase() };
    for (const [key, header] of [['protocolVersion', 'mcp-protocol-version'], ['mcpMethod', 'mcp-method'], ['mcpName', 'mcp-name'], ['sessionId', 'mcp-session-id']]) {
      if (headers.has(header)) entry[key] = headers.get(header);
    }
    log.push(entry);
    const promise = fetch(input, init).then(
      (res) => {
        entry.status = res.status;
        entry.contentType = res.headers.get('content-type') ?? undefined;
        if (res.headers.has('mcp-session-id')) entry.setSessionId = res.headers.get('mcp-session-id');
        return res;
      },
      (err) => {
        entry.error = err?.name === 'AbortError' ? 'aborted' : String(err?.message ?? err);
        throw err;
      },
    );
    pending.add(promise);
    promise.finally(() => pending.delete(promise)).catch(() => {});
    return promise;
  };
  return { fetch: fetchFn, log };
}

/** Resolve after `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait until `predicate()` is true or `ms` elapse; returns the predicate's final value. */
export async function waitFor(predicate, ms, step = 20) {
  const end = Date.now() + ms;
  while (!predicate() && Date.now() < end) await sleep(step);
  return predicate();
}

/** Names of listed items (tools/prompts) or URIs (resources). */
export const names = (items, key = 'name') => (items ?? []).map((item) => item[key]);
