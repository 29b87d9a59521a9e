#!/usr/bin/env bash
# Write the compose stack's secret files into deploy/compose/secrets/ (git-ignored), mode 0600.
# Existing files are kept, so running it again changes nothing. Needs `mcpserve` (make install).
set -euo pipefail
cd "$(dirname "$0")"
MCPSERVE=${MCPSERVE:-../../.venv/bin/mcpserve}
umask 077
mkdir -p secrets
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
write() { [[ -s "secrets/$1" ]] || printf '%s\n' "$2" >"secrets/$1"; }

write api-keys "$(random)$(random)"
write request-state-keys "$("$MCPSERVE" new-key)"
write redis-password "$(random)"
write redis-url "redis://:$(cat secrets/redis-password)@redis:6379/0"
write postgres-password "$(random)"
write reader-password "$(random)"
write database-url "postgresql://mcp_reader:$(cat secrets/reader-password)@postgres:5432/mcpserve?search_path=mcpserve_demo"
write grafana-admin-password "$(random)"
echo "secrets in $PWD/secrets; the API key for clients: $(head -n1 secrets/api-keys)"
