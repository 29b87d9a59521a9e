"""Loading the bundled demo into PostgreSQL, and picking a backend from the database URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import asyncpg
import pytest
from click.testing import CliRunner

from mcpserve.demo.load_postgres import main
from mcpserve.demo.sql import PostgresDatabase, SQLiteDatabase, database_for_url, sqlite_path
from tests.support.postgres import SHARED_URL, unique_schema
from tests.support.servers import free_port

from .support import BUNDLED_DB


@pytest.fixture
def schema() -> Iterator[str]:
    """A schema name of our own; the command runs its own event loop, so these tests are sync."""
    name = unique_schema()
    yield name
    anyio.run(_drop, name)


async def _drop(schema: str) -> None:
    conn = await asyncpg.connect(SHARED_URL)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def _counts(schema: str) -> list[int]:
    conn = await asyncpg.connect(SHARED_URL)
    try:
        return [
            int(await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}"))
            for table in ("services", "deployments", "incidents")
        ]
    finally:
        await conn.close()


def test_the_command_loads_the_demo_and_can_replace_it(schema: str) -> None:
    runner = CliRunner()
    first = runner.invoke(main, [SHARED_URL, "--schema", schema])
    assert first.exit_code == 0, first.output
    assert f"loaded into schema {schema}: services 10, deployments 77, incidents 25" in first.output
    assert anyio.run(_counts, schema) == [10, 77, 25]

    again = runner.invoke(main, [SHARED_URL, "--schema", schema])
    assert again.exit_code == 1
    assert "already exists" in again.output

    replaced = runner.invoke(main, [SHARED_URL, "--schema", schema, "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert anyio.run(_counts, schema) == [10, 77, 25]


def test_an_unreachable_server_fails_without_echoing_the_url() -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/test"
    result = CliRunner().invoke(main, [url, "--schema", "unused"])
    assert result.exit_code == 1
    assert "load failed" in result.output
    assert "hunter2" not in result.output


@pytest.mark.anyio
async def test_the_url_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(database_for_url("postgresql://u@h/db"), PostgresDatabase)
    assert isinstance(database_for_url("POSTGRES://u@h/db"), PostgresDatabase)
    assert sqlite_path("sqlite:///relative/ops.db") == Path("relative/ops.db")
    assert sqlite_path("sqlite:////abs/ops.db") == Path("/abs/ops.db")
    assert sqlite_path("ops.db") == Path("ops.db")
    database = database_for_url(str(BUNDLED_DB))
    assert isinstance(database, SQLiteDatabase)
    await database.open()
    await database.ping()
    assert sorted(await database.tables()) == ["deployments", "incidents", "services"]
    await database.aclose()
