#!/usr/bin/env bash
# Install the Debian packages the test suite runs for real (nginx in front of replicas), if
# missing. Idempotent: does nothing when every command is already present.
set -euo pipefail

# command the tests run -> the Debian package that provides it
declare -A PACKAGES=([nginx]=nginx)

missing=()
for command in "${!PACKAGES[@]}"; do
  command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || missing+=("${PACKAGES[$command]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${missing[*]} (run: sudo apt-get install -y --no-install-recommends ${missing[*]})" >&2
  exit 1
fi
echo "installing ${missing[*]}"
for attempt in 1 2 3 4 5; do  # another apt may hold the dpkg lock for a moment
  if apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; then
    exit 0
  fi
  [ "$attempt" -eq 1 ] && apt-get update >/dev/null || true
  sleep 5
done
echo "could not install ${missing[*]}" >&2
exit 1
