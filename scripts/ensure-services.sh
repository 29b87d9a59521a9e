#!/usr/bin/env bash
# Start the local Redis and PostgreSQL the test suite talks to, if they are not already up.
# Idempotent; prints what it did. Loopback only.
set -uo pipefail

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

# Tests also start private redis-servers (outages), so the binary itself is needed, not only a
# reachable Redis: install it where it is missing and we can.
if ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing redis-server"
  for _ in 1 2 3; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server >/dev/null && break
    sleep 5  # the dpkg lock may be held by another installer
  done
fi

if command -v redis-server >/dev/null 2>&1; then
  if ! redis_up; then
    echo "starting redis on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
  fi
  redis_up || echo "warning: redis is not reachable on 127.0.0.1:6379" >&2
else
  echo "warning: redis-server is not installed" >&2
fi

if command -v pg_ctlcluster >/dev/null 2>&1; then
  if ! pg_up; then
    echo "starting postgresql on 127.0.0.1:5432"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 100); do pg_up && break; sleep 0.1; done
  fi
  pg_up || echo "warning: postgresql is not reachable on 127.0.0.1:5432" >&2
else
  echo "warning: postgresql is not installed" >&2
fi
exit 0
