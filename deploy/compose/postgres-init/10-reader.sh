#!/bin/sh
# The least-privilege role the replicas connect with (docs/database.md), its password from the
# reader-password secret. Runs once, when the data volume is first initialised.
set -eu
password=$(cat /run/secrets/reader-password)
psql -v ON_ERROR_STOP=1 -U postgres -d mcpserve -v password="$password" <<'SQL'
CREATE ROLE mcp_reader LOGIN PASSWORD :'password';
CREATE SCHEMA IF NOT EXISTS mcpserve_demo;
GRANT CONNECT ON DATABASE mcpserve TO mcp_reader;
GRANT USAGE ON SCHEMA mcpserve_demo TO mcp_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA mcpserve_demo GRANT SELECT ON TABLES TO mcp_reader;
ALTER ROLE mcp_reader SET default_transaction_read_only = on;
ALTER ROLE mcp_reader SET statement_timeout = '5s';
ALTER ROLE mcp_reader SET idle_in_transaction_session_timeout = '30s';
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
