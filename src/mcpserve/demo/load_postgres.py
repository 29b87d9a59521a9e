"""Copy the bundled demo database into a PostgreSQL schema, so the demo runs on PostgreSQL too.

    python -m mcpserve.demo.load_postgres postgresql://owner@host/db --schema mcpserve_demo

Then serve with ``MCPSERVE_DATABASE_URL=postgresql://reader@host/db?search_path=mcpserve_demo``.
Column types follow SQLite's declared affinity (INTEGER → bigint, REAL → double precision, else
text), so the same queries return the same values on both engines. This needs a role that may
create tables (the serving role should not; see docs/database.md).
"""

from __future__ import annotations

import sqlite3
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncpg
import click

from .app import DEMO_DATABASE
from .sql import open_read_only

__all__ = ["load_demo", "main"]

_TYPES = {"INTEGER": "bigint", "REAL": "double precision"}


@dataclass(frozen=True)
class _Table:
    name: str
    columns: list[tuple[str, str, bool]]  # name, PostgreSQL type, NOT NULL
    primary_key: list[str]
    indexes: list[tuple[str, list[str]]]
    rows: list[tuple[object, ...]]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _read_tables(source: Path) -> list[_Table]:
    with closing(open_read_only(source)) as conn:
        listing = (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
        names = [row[0] for row in conn.execute(listing)]
        return [_read_table(conn, name) for name in names]


def _read_table(conn: sqlite3.Connection, name: str) -> _Table:
    info = conn.execute('SELECT name, type, "notnull", pk FROM pragma_table_info(?)', (name,)).fetchall()
    columns = [
        (column, _TYPES.get(str(kind).upper(), "text"), bool(notnull)) for column, kind, notnull, _ in info
    ]
    primary_key = [row[0] for row in sorted((r for r in info if r[3]), key=lambda r: r[3])]
    indexes = []
    for (index_name,) in conn.execute(
        "SELECT name FROM pragma_index_list(?) WHERE origin = 'c' ORDER BY name", (name,)
    ):
        parts = conn.execute("SELECT name FROM pragma_index_info(?) ORDER BY seqno", (index_name,))
        indexes.append((str(index_name), [str(part[0]) for part in parts]))
    quoted = ", ".join(_quote(column[0]) for column in columns)
    rows = conn.execute(f"SELECT {quoted} FROM {_quote(name)}").fetchall()  # noqa: S608 - schema names
    return _Table(name, columns, primary_key, indexes, rows)


def _create_sql(schema: str, table: _Table) -> list[str]:
    target = f"{_quote(schema)}.{_quote(table.name)}"
    definitions = [
        f"{_quote(name)} {kind}{' NOT NULL' if notnull else ''}" for name, kind, notnull in table.columns
    ]
    if table.primary_key:
        definitions.append(f"PRIMARY KEY ({', '.join(map(_quote, table.primary_key))})")
    statements = [f"CREATE TABLE {target} ({', '.join(definitions)})"]
    statements += [
        f"CREATE INDEX {_quote(index)} ON {target} ({', '.join(map(_quote, columns))})"
        for index, columns in table.indexes
    ]
    return statements


async def load_demo(
    dsn: str, schema: str, *, source: Path = DEMO_DATABASE, replace: bool = False
) -> dict[str, int]:
    """Create ``schema`` (if needed) and the demo tables in it, in one transaction; rows per table."""
    tables = _read_tables(source)
    conn = await asyncpg.connect(dsn, server_settings={"default_transaction_read_only": "off"})
    try:
        async with conn.transaction():
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
            if replace:
                for table in reversed(tables):
                    await conn.execute(f"DROP TABLE IF EXISTS {_quote(schema)}.{_quote(table.name)}")
            for table in tables:
                for statement in _create_sql(schema, table):
                    await conn.execute(statement)
                await conn.copy_records_to_table(
                    table.name,
                    records=table.rows,
                    columns=[column[0] for column in table.columns],
                    schema_name=schema,
                )
    finally:
        await conn.close()
    return {table.name: len(table.rows) for table in tables}


@click.command()
@click.argument("dsn")
@click.option("--schema", default="mcpserve_demo", show_default=True, help="Schema to create the tables in.")
@click.option("--replace", is_flag=True, help="Drop the demo tables in that schema first.")
def main(dsn: str, schema: str, replace: bool) -> None:
    """Load the bundled demo data into PostgreSQL at DSN."""
    try:
        counts = anyio.run(lambda: load_demo(dsn, schema, replace=replace))
    except (OSError, asyncpg.PostgresError) as exc:
        click.echo(f"load failed: {getattr(exc, 'message', None) or type(exc).__name__}", err=True)
        sys.exit(1)
    summary = ", ".join(f"{name} {count}" for name, count in counts.items())
    click.echo(f"loaded into schema {schema}: {summary}")


if __name__ == "__main__":  # pragma: no cover
    main()
