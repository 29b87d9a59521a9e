"""The demo data in a fresh schema on the shared PostgreSQL, plus traps for write attempts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from mcpserve.demo.load_postgres import load_demo
from tests.support.postgres import SHARED_URL, unique_schema, with_search_path

# Objects a hostile query might use to hide a write: functions that write, a procedure, a sequence.
TRAPS = """
CREATE SEQUENCE {s}.ticket_numbers;
CREATE FUNCTION {s}.sneaky_insert() RETURNS bigint LANGUAGE sql AS
  $$ INSERT INTO {s}.incidents (id, service, severity, title, status, opened_at, commander, summary)
     VALUES (9999, 'gateway', 'sev4', 'x', 'open', '2026-01-01', 'x', 'x') RETURNING id $$;
CREATE FUNCTION {s}.sneaky_unlock() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('transaction_read_only', 'off', true);
  DELETE FROM {s}.incidents;
  RETURN 1;
END $$;
CREATE FUNCTION {s}.sneaky_dynamic() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'UPDATE {s}.services SET tier = 3';
  RETURN 1;
END $$;
CREATE PROCEDURE {s}.sneaky_procedure() LANGUAGE sql AS $$ DELETE FROM {s}.incidents $$;
"""
FINGERPRINT_SQL = """
SELECT (SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {s}.services t)
    || (SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {s}.deployments t)
    || (SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {s}.incidents t)
    || (SELECT last_value::text || is_called::text FROM {s}.ticket_numbers)
    || (SELECT count(*)::text FROM pg_tables WHERE schemaname = '{s}')
"""


@dataclass(frozen=True)
class DemoSchema:
    name: str
    url: str  # the shared server with search_path set to the schema

    async def fingerprint(self) -> str:
        """A digest of every row, the sequence and the table list, read on a separate connection."""
        conn = await asyncpg.connect(SHARED_URL)
        try:
            return str(await conn.fetchval(FINGERPRINT_SQL.format(s=self.name)))
        finally:
            await conn.close()


@asynccontextmanager
async def loaded_demo_schema() -> AsyncIterator[DemoSchema]:
    """The bundled demo loaded into a uniquely named schema, dropped afterwards (ours alone)."""
    schema = unique_schema()
    await load_demo(SHARED_URL, schema)
    conn = await asyncpg.connect(SHARED_URL)
    try:
        await conn.execute(TRAPS.format(s=schema))
        yield DemoSchema(schema, with_search_path(SHARED_URL, schema))
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
