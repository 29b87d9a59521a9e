// The npm packages the client scripts use, re-exported from one module. scripts/node-tools.sh copies
// this file next to the installed node_modules (.tools/interop-js), so the bare specifiers below
// resolve there; common.mjs imports it from wherever the packages are installed.
export * as v2 from '@modelcontextprotocol/client';
export * as v1Client from '@modelcontextprotocol/sdk/client/index.js';
export * as v1Http from '@modelcontextprotocol/sdk/client/streamableHttp.js';
export * as v1Types from '@modelcontextprotocol/sdk/types.js';
