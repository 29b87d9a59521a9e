#!/usr/bin/env bash
# `make image`: build the mcpserve container image with podman/buildah and smoke-test it without a
# container runtime (none can run on these machines; see docs/deployment.md).
#
#   1. install podman, buildah, fuse-overlayfs and mmdebstrap when missing (apt);
#   2. build the Debian base from packages with mmdebstrap, once (localhost/mcpserve-base);
#   3. build deploy/container/Containerfile against that base pinned by digest (--isolation chroot);
#   4. mount the image and, as its non-root user (chroot --userspec), run `mcpserve check`,
#      start `mcpserve serve`, pass `mcpserve health` and answer one tools/call.
#
# IMAGE (default localhost/mcpserve:dev), DEBIAN_MIRROR, HOST_CA_BUNDLE may be set.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/mcpserve:dev}
BASE=localhost/mcpserve-base:bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_CA_BUNDLE=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
USER_SPEC=10001:10001
PYTHON=${PYTHON:-.venv/bin/python}
WORK=build/image
mkdir -p "$WORK"

missing=()
for package in podman buildah fuse-overlayfs mmdebstrap; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "image: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! podman image exists "$BASE"; then
  echo "image: building $BASE from Debian packages (mmdebstrap)"
  mmdebstrap --quiet --variant=apt --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    --format=tar bookworm "$WORK/base.tar" "$DEBIAN_MIRROR"
  podman import --quiet "$WORK/base.tar" "$BASE" >/dev/null
  rm -f "$WORK/base.tar"
fi
base_digest=$(podman image inspect --format '{{.Digest}}' "$BASE")
echo "image: base $BASE@$base_digest"

"$PYTHON" scripts/image_constraints.py >"$WORK/constraints.txt"
secret=()
[[ -s "$HOST_CA_BUNDLE" ]] && secret=(--secret "id=hostca,src=$HOST_CA_BUNDLE")
started=$(date +%s)
# --format docker: the OCI image format has no HEALTHCHECK.
podman build --quiet --format docker --isolation chroot "${secret[@]}" \
  --build-arg "BASE=localhost/mcpserve-base@$base_digest" \
  -f deploy/container/Containerfile -t "$IMAGE" . >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image: built $IMAGE in $(($(date +%s) - started)) s, $((size / 1000000)) MB"

# Smoke test: the image's own environment, its non-root user, a read-only mount, no runtime.
mount=$(podman image mount "$IMAGE")
server=
cleanup() {
  [[ -n "$server" ]] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
  podman image unmount "$IMAGE" >/dev/null || true
}
trap cleanup EXIT
mapfile -t image_env < <(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE" | sed '/^$/d')
port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The host's network namespace is shared: bind loopback, and run the demo without authentication.
run_env=(env -i "${image_env[@]}" MCPSERVE_HOST=127.0.0.1 MCPSERVE_AUTH=none "PORT=$port")
as_user=(chroot --userspec="$USER_SPEC" "$mount" "${run_env[@]}")
in_image() { "${as_user[@]}" "$@"; }

echo "image: mcpserve check as $USER_SPEC"
in_image mcpserve check >"$WORK/check.json" 2>"$WORK/check.log"
grep -q '"status": "ready"' "$WORK/check.json"
# chroot and env exec, so $! is the server process itself.
"${as_user[@]}" mcpserve serve >/dev/null 2>"$WORK/serve.log" &
server=$!
for _ in $(seq 1 100); do
  in_image mcpserve health >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.1 # polling while the server starts
done
in_image mcpserve health
reply=$(curl -sS --max-time 10 "http://127.0.0.1:$port/mcp" \
  -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
  -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H 'mcp-name: get_deployment_status' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_deployment_status",
       "arguments":{"service":"checkout-api"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
       "io.modelcontextprotocol/clientCapabilities":{}}}}')
echo "$reply" | grep -q '"isError":false' || { echo "image: unexpected reply: $reply" >&2; exit 1; }
echo "image: tools/call answered by the image as $USER_SPEC: ${reply:0:120}..."
healthcheck=$(podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$IMAGE")
[[ "$healthcheck" == '["CMD","mcpserve","health"]' ]] || { echo "image: HEALTHCHECK missing" >&2; exit 1; }
kill -TERM "$server"
wait "$server"
server=
grep -q '"drained in' "$WORK/serve.log"
echo "image: $IMAGE OK ($((size / 1000000)) MB), stopped cleanly on SIGTERM"
