#!/usr/bin/env node
// TS SDK v1 (2025-era sessions) as continuous load on the cluster: one session through the proxy,
// tool calls until <stopFile> exists, an elicitation (answered wherever the proxy sends the
// answer) every 10th call, and the standalone GET stream the SDK opens by itself.
//
//   node load_v1.mjs <url> <stopFile>
//
// Prints ONE JSON object: {ok, made, failed, failedAt:[unix s], errors:[first few], elicitations, sessionId,
// getRequests, getStatuses}. Exit 0 unless the client could not connect at all.
import { existsSync } from 'node:fs';
import { emit, fail, loadDeps, recordingFetch } from '../../interop/js/common.mjs';

const [url, stopFile] = process.argv.slice(2);
const recorder = recordingFetch();
let stage = 'load';
try {
  const { v1Client, v1Http, v1Types } = await loadDeps();
  const transport = new v1Http.StreamableHTTPClientTransport(new URL(url), { fetch: recorder.fetch });
  const client = new v1Client.Client(
    { name: 'mcpserve-cluster-v1', version: '0.0.1' },
    { capabilities: { elicitation: {} } },
  );
  client.setRequestHandler(v1Types.ElicitRequestSchema, async () => ({ action: 'accept', content: { ok: true } }));
  const errors = [];
  client.onerror = () => {}; // GET stream reconnects are the SDK's business; calls are counted below
  stage = 'connect';
  await client.connect(transport);
  const out = { ok: true, sessionId: transport.sessionId ?? null, made: 0, failed: 0, failedAt: [], elicitations: 0 };
  stage = 'calls';
  while (!existsSync(stopFile)) {
    out.made += 1;
    const elicit = out.made % 10 === 0;
    const call = elicit ? { name: 'confirm', arguments: { action: `a${out.made}` } } : { name: 'echo', arguments: { text: `t${out.made}` } };
    try {
      const result = await client.callTool(call, undefined, { timeout: 30000 });
      const text = result.content?.[0]?.text;
      const expected = elicit ? `a${out.made}: accept` : `t${out.made}`;
      if (result.isError || text !== expected) throw new Error(`unexpected result ${JSON.stringify(result).slice(0, 200)}`);
      if (elicit) out.elicitations += 1;
    } catch (err) {
      out.failed += 1;
      out.failedAt.push(Date.now() / 1000);
      if (errors.length < 5) errors.push(String(err?.message ?? err));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  out.errors = errors;
  const gets = recorder.log.filter((entry) => entry.method === 'GET');
  out.getRequests = gets.length;
  out.getStatuses = [...new Set(gets.map((entry) => entry.status ?? entry.error ?? 'pending'))];
  stage = 'close';
  await transport.terminateSession().catch(() => {});
  await client.close();
  emit(out);
} catch (err) {
  fail(stage, err);
}
