#!/usr/bin/env bash
# Debian packages the observability tests need, installed only when missing:
#   promtool (package prometheus) checks and unit-tests deploy/observability's alert rules;
#   chromium is the headless browser the operator console's test drives (through Playwright,
#   which never downloads a browser of its own here).
# Idempotent; needs root (or passwordless sudo) only when something is missing.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
echo "installing ${missing[*]} (observability tests)"
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5; do  # another apt run may hold the dpkg lock for a while
  if "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    exit 0
  fi
  [ "$attempt" -eq 1 ] && "${as_root[@]}" apt-get update -q || true
  sleep 10
done
echo "error: could not install ${missing[*]}" >&2
exit 1
