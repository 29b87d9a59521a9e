"""The SQL tool over real PostgreSQL: every write is refused by each layer, reads match SQLite."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

from mcpserve.demo.deployments import deployment_status
from mcpserve.demo.sql import DatabaseUnavailable, PostgresDatabase, QueryRejected, SQLiteDatabase

from .pg_demo import DemoSchema
from .support import BUNDLED_DB

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(demo_schema: DemoSchema) -> AsyncIterator[PostgresDatabase]:
    db = PostgresDatabase(demo_schema.url, min_size=1, max_size=4, statement_timeout=2.0)
    await db.open()
    try:
        yield db
    finally:
        await db.aclose()


WRITES = [
    "INSERT INTO services VALUES ('x', 't', 1, 'r', 'go', '#c', 0.9, 'd')",
    "UPDATE services SET tier = 3",
    "DELETE FROM incidents",
    "TRUNCATE incidents",
    "DROP TABLE incidents",
    "CREATE TABLE stolen (x int)",
    "ALTER TABLE services ADD COLUMN x int",
    "COPY services TO PROGRAM 'touch /tmp/mcpserve-pwned'",
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/mcpserve-pwned'",
    "COPY services FROM '/etc/passwd'",
    "SET TRANSACTION READ WRITE",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    "SET default_transaction_read_only = off",
    "RESET default_transaction_read_only",
    "RESET ALL",
    "BEGIN; DELETE FROM incidents; COMMIT",
    "SELECT 1; DELETE FROM incidents",
    "SELECT $$;$$; DELETE FROM incidents",
    "/* a read */ DELETE FROM incidents",
    "WITH gone AS (DELETE FROM incidents RETURNING *) SELECT count(*) FROM gone",
    "WITH x AS (SELECT 1) INSERT INTO services SELECT * FROM services",
    "SELECT * INTO stolen FROM services",
    "SELECT * FROM services FOR UPDATE",
    "SELECT * FROM services FOR NO KEY UPDATE",
    "SELECT * FROM services FOR SHARE",
    "SELECT * FROM services FOR KEY SHARE",
    "SELECT nextval('ticket_numbers')",
    "SELECT setval('ticket_numbers', 42)",
    "SELECT \"nextval\"('ticket_numbers')",
    "SELECT pg_catalog.nextval('ticket_numbers')",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT set_config('transaction_read_only', 'off', true)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_from_bytea(0, 'x')",
    "SELECT dblink_exec('dbname=test', 'DELETE FROM incidents')",
    "SELECT query_to_xml('DELETE FROM incidents RETURNING 1', true, false, '')",
    "SELECT pg_advisory_lock(1)",
    "SELECT pg_notify('channel', 'x')",
    "SELECT pg_terminate_backend(pg_backend_pid())",
    "SELECT * FROM pg_authid",
    "SELECT passwd FROM pg_shadow",
    'SELECT * FROM U&"pg_\\0061uthid"',
    "DO $$ BEGIN DELETE FROM incidents; END $$",
    "CALL sneaky_procedure()",
    "LOCK TABLE services",
    "NOTIFY channel",
    "LISTEN channel",
    "PREPARE wipe AS DELETE FROM incidents",
    "EXECUTE wipe",
    "EXPLAIN ANALYZE DELETE FROM incidents",
    "EXPLAIN (ANALYZE) SELECT sneaky_insert()",
    "EXPLAIN ANALYSE SELECT 1",
    "VACUUM services",
    "REFRESH MATERIALIZED VIEW anything",
    "GRANT ALL ON services TO PUBLIC",
    "DISCARD ALL",
    "SHOW ALL",
    "MERGE INTO services USING services s ON false WHEN NOT MATCHED THEN DO NOTHING",
    # Writes the lexical layer cannot see: user functions. The read-only transaction stops them.
    "SELECT sneaky_insert()",
    "SELECT sneaky_unlock()",
    "SELECT sneaky_dynamic()",
    "SELECT * FROM sneaky_insert()",
]


@pytest.mark.parametrize("sql", WRITES)
async def test_every_write_is_refused_and_changes_nothing(
    database: PostgresDatabase, demo_schema: DemoSchema, sql: str
) -> None:
    before = await demo_schema.fingerprint()
    with pytest.raises(QueryRejected) as refused:
        await database.query(sql)
    message = str(refused.value)
    assert message
    assert "postgresql://" not in message
    assert "Traceback" not in message
    assert await demo_schema.fingerprint() == before


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT sneaky_insert()", "read-only transaction"),
        ("SELECT sneaky_dynamic()", "read-only transaction"),
        ("COPY services TO PROGRAM 'id'", "COPY is refused"),
        ("SET TRANSACTION READ WRITE", "SET is refused"),
        ("SELECT 1; SELECT 2", "exactly one SQL statement"),
        ("SELECT nextval('ticket_numbers')", "nextval is refused"),
        ("SELECT * FROM services FOR SHARE", "row locks"),
        ("SELECT update FROM services", 'write "update" in double quotes'),
        ("SHOW ALL", "must start with SELECT"),
        ("", "the query is empty"),
        ("SELECT 'unterminated", "unterminated quoted string"),
        ("SELECT $x$ never closed", "unterminated dollar-quoted"),
        ("SELECT 1 /* never closed", "unterminated /* comment"),
        ("SELECT 1 " + " " * 20_000, "longer than 20000 characters"),
    ],
)
async def test_refusals_say_why(database: PostgresDatabase, sql: str, fragment: str) -> None:
    with pytest.raises(QueryRejected, match=None) as refused:
        await database.query(sql)
    assert fragment in str(refused.value)


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM incidents",
        "UPDATE services SET tier = 3",
        "SELECT nextval('ticket_numbers')",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "SELECT sneaky_unlock()",
        "CALL sneaky_procedure()",
        "SET TRANSACTION READ WRITE",
    ],
)
async def test_read_only_transaction_alone_refuses_writes(
    database: PostgresDatabase, demo_schema: DemoSchema, sql: str
) -> None:
    """Bypass the lexical layer: the transaction still stops the write, and its rollback undoes settings."""
    before = await demo_schema.fingerprint()
    with pytest.raises(QueryRejected):
        await database._run(lambda conn: conn.execute(sql + "; DELETE FROM incidents"))
    with pytest.raises(QueryRejected, match="read-only transaction"):
        await database._run(lambda conn: conn.execute("DELETE FROM incidents"))
    assert await demo_schema.fingerprint() == before


async def test_a_session_setting_changed_by_a_query_does_not_outlive_it(demo_schema: DemoSchema) -> None:
    single = PostgresDatabase(demo_schema.url, min_size=1, max_size=1)
    try:
        await single._run(lambda conn: conn.execute("SET statement_timeout = 0; SET search_path = public"))
        settings = await single.fetch(
            "SELECT current_setting('statement_timeout') AS t, current_schema() AS s"
        )
        assert settings == [{"t": "5s", "s": demo_schema.name}]
    finally:
        await single.aclose()


async def test_strings_that_look_like_code_are_just_strings(database: PostgresDatabase) -> None:
    result = await database.query(
        "SELECT 'DELETE; DROP' AS a, E'\\'; DELETE FROM incidents; --' AS b, $q$ ; INSERT $q$ AS c, "
        '1 AS "update" -- DELETE FROM incidents'
    )
    assert result.columns == ["a", "b", "c", "update"]
    assert result.rows == [["DELETE; DROP", "'; DELETE FROM incidents; --", " ; INSERT ", 1]]


READS = [
    "SELECT name, team, tier, slo_target FROM services ORDER BY name",
    "SELECT service, count(*) AS n FROM deployments GROUP BY service ORDER BY n DESC, service",
    "SELECT s.name, count(i.id) AS open FROM services s LEFT JOIN incidents i "
    "ON i.service = s.name AND i.status != 'resolved' GROUP BY s.name ORDER BY s.name",
    "WITH recent AS (SELECT * FROM deployments ORDER BY started_at DESC, id DESC LIMIT 5) "
    "SELECT id, service, version, finished_at FROM recent",
    "SELECT severity, max(opened_at) AS latest FROM incidents GROUP BY severity ORDER BY severity",
    "VALUES (1, 'a'), (2, 'b')",
]


@pytest.mark.parametrize("sql", READS)
async def test_reads_match_sqlite(database: PostgresDatabase, sql: str) -> None:
    assert await database.query(sql) == await SQLiteDatabase(BUNDLED_DB).query(sql)


async def test_deployment_status_matches_sqlite(database: PostgresDatabase) -> None:
    sqlite = SQLiteDatabase(BUNDLED_DB)
    names = [row["name"] for row in await sqlite.fetch("SELECT name FROM services ORDER BY name")]
    for name in names:
        assert await deployment_status(database, name) == await deployment_status(sqlite, name)


async def test_table_statement_and_parenthesised_select_are_reads(database: PostgresDatabase) -> None:
    assert (await database.query("TABLE services")).row_count == 10
    assert (await database.query("(SELECT 1 AS one)")).rows == [[1]]
    explained = await database.query("EXPLAIN SELECT * FROM services")
    assert explained.columns == ["QUERY PLAN"]


async def test_rows_are_capped(demo_schema: DemoSchema) -> None:
    db = PostgresDatabase(demo_schema.url, row_limit=3)
    try:
        result = await db.query("SELECT id FROM deployments ORDER BY id")
    finally:
        await db.aclose()
    assert (result.row_count, result.truncated, result.rows) == (3, True, [[1], [2], [3]])


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT repeat('x', 100000000)",  # one value of 100 MB
        "SELECT repeat('x', 10000) FROM generate_series(1, 400)",  # 4 MB in rows of 10 kB
    ],
)
async def test_results_over_the_size_cap_are_refused_like_sqlite(demo_schema: DemoSchema, sql: str) -> None:
    # A generous time limit: the refusal must come from the size cap, not the clock.
    db = PostgresDatabase(demo_schema.url, statement_timeout=30.0)
    try:
        with pytest.raises(QueryRejected) as refused:
            await db.query(sql)
        assert str(refused.value) == "a value in the query or its result exceeds the 1 MB size limit"
        assert (await db.query("SELECT 1")).rows == [[1]]  # the connection is usable afterwards
    finally:
        await db.aclose()


async def test_the_size_cap_keeps_results_under_it_intact(database: PostgresDatabase) -> None:
    near = await database.query("SELECT repeat('x', 900000) AS big, 2 AS big -- a trailing comment")
    assert near.columns == ["big", "big"]
    assert (len(str(near.rows[0][0])), near.rows[0][1]) == (900000, 2)
    ordered = await database.query("SELECT id, NULL AS nothing FROM deployments ORDER BY id DESC LIMIT 3")
    top = (await database.query("SELECT max(id) FROM deployments")).rows[0][0]
    assert isinstance(top, int)
    assert [row[0] for row in ordered.rows] == [top - i for i in range(3)]
    assert {row[1] for row in ordered.rows} == {None}
    assert (await database.query("SELECT")).rows == [[]]  # no columns: nothing to measure


async def test_slow_queries_are_stopped(demo_schema: DemoSchema) -> None:
    db = PostgresDatabase(demo_schema.url, statement_timeout=0.2)
    try:
        with pytest.raises(QueryRejected, match=r"exceeded the 0.2 s time limit"):
            await db.query("SELECT pg_sleep(5)")
        assert (await db.query("SELECT 1")).rows == [[1]]  # the connection is usable afterwards
    finally:
        await db.aclose()


async def test_values_become_json(database: PostgresDatabase) -> None:
    result = await database.query(
        "SELECT 1.50::numeric, 2::numeric, 'NaN'::numeric, 'Infinity'::float8, '-Infinity'::float8, "
        "'NaN'::float8, 0.25::float8, DATE '2026-01-02', TIMESTAMP '2026-01-02 03:04:05', '\\x00ff'::bytea, "
        "ARRAY[1, 2], true, NULL, '1 day'::interval, '00000000-0000-0000-0000-000000000001'::uuid, "
        "TIME '10:11:12'"
    )
    assert result.rows == [
        [
            1.5, 2, "NaN", "Infinity", "-Infinity", "NaN", 0.25, "2026-01-02", "2026-01-02T03:04:05",
            "00ff", "[1,2]", True, None, "1 day, 0:00:00", "00000000-0000-0000-0000-000000000001",
            "10:11:12",
        ]
    ]  # fmt: skip


async def test_errors_advise_the_author(database: PostgresDatabase) -> None:
    with pytest.raises(QueryRejected, match=r"relation \"nope\" does not exist; tables are: deployments"):
        await database.query("SELECT * FROM nope")
    with pytest.raises(QueryRejected, match=r"syntax error: .* \(PostgreSQL SQL dialect\)"):
        await database.query("SELECT FROM WHERE")
    with pytest.raises(QueryRejected, match=r"the query failed: column \"nope\" does not exist"):
        await database.query("SELECT nope FROM services")


async def test_tables_lists_the_schema(database: PostgresDatabase) -> None:
    tables = await database.tables()
    assert sorted(tables) == ["deployments", "incidents", "services"]
    assert tables["services"][:3] == ["name", "team", "tier"]


async def test_a_superuser_role_is_warned_about(
    demo_schema: DemoSchema, caplog: pytest.LogCaptureFixture
) -> None:
    db = PostgresDatabase(demo_schema.url)
    with caplog.at_level(logging.WARNING, logger="mcpserve.demo.sql"):
        await db.open()
    await db.aclose()
    assert any("is a superuser" in record.getMessage() for record in caplog.records)
    assert all("postgresql://" not in record.getMessage() for record in caplog.records)


async def test_a_least_privilege_role_is_not_warned_about(
    demo_schema: DemoSchema, caplog: pytest.LogCaptureFixture
) -> None:
    role = f"{demo_schema.name}_reader"
    admin = await asyncpg.connect(demo_schema.url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA {demo_schema.name} TO {role}")
        await admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {demo_schema.name} TO {role}")
        await admin.execute(f"REVOKE SELECT ON {demo_schema.name}.incidents FROM {role}")
        url = demo_schema.url.replace("postgres@", f"{role}@")
        db = PostgresDatabase(url)
        with caplog.at_level(logging.WARNING, logger="mcpserve.demo.sql"):
            await db.open()
        try:
            assert (await db.query("SELECT count(*) FROM services")).rows == [[10]]
            with pytest.raises(QueryRejected, match="allowed; permission denied for table incidents"):
                await db.query("SELECT * FROM incidents")
        finally:
            await db.aclose()
        assert not [r for r in caplog.records if "superuser" in r.getMessage()]
    finally:
        await admin.execute(f"REASSIGN OWNED BY {role} TO postgres; DROP OWNED BY {role}; DROP ROLE {role}")
        await admin.close()


async def test_an_unreachable_server_is_reported_without_the_url() -> None:
    from tests.support.servers import free_port  # noqa: PLC0415

    db = PostgresDatabase(f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/test")
    with pytest.raises(DatabaseUnavailable) as down:
        await db.ping()
    assert "hunter2" not in str(down.value)
    assert "127.0.0.1" not in str(down.value)
    await db.aclose()
    with pytest.raises(DatabaseUnavailable, match="closed"):
        await db.ping()


async def test_a_cancelled_query_leaves_the_pool_usable(demo_schema: DemoSchema) -> None:
    """A tool timeout cancels the query mid-flight; the single pooled connection must come back clean."""
    db = PostgresDatabase(demo_schema.url, min_size=1, max_size=1, statement_timeout=30)
    try:
        with anyio.move_on_after(0.3) as scope:
            await db.query("SELECT pg_sleep(10)")
        assert scope.cancelled_caught
        with anyio.fail_after(5):
            assert (await db.query("SELECT count(*) FROM services")).rows == [[10]]
    finally:
        await db.aclose()
