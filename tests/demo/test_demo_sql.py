"""ReadOnlySQLite: every write path is refused by each layer, and reads behave."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from mcpserve.demo.sql import QueryRejected, ReadOnlySQLite, open_read_only

from .support import sha256

# ``{tmp}`` is replaced with a folder outside the database's; no file may appear there.
WRITE_ATTEMPTS = {
    "insert": "INSERT INTO services (name, team, tier) VALUES ('evil', 'x', 1)",
    "update": "UPDATE incidents SET status = 'resolved'",
    "delete": "DELETE FROM incidents",
    "replace": "REPLACE INTO services (name, team, tier) VALUES ('gateway', 'x', 1)",
    "drop-table": "DROP TABLE incidents",
    "create-table": "CREATE TABLE evil (x)",
    "create-temp-table": "CREATE TEMP TABLE evil (x)",
    "create-view": "CREATE VIEW evil AS SELECT 1",
    "create-index": "CREATE INDEX evil ON incidents (title)",
    "create-trigger": "CREATE TRIGGER evil AFTER INSERT ON incidents BEGIN DELETE FROM services; END",
    "alter-table": "ALTER TABLE incidents ADD COLUMN evil TEXT",
    "several-statements": "SELECT 1; DELETE FROM incidents",
    "several-statements-comment": "SELECT 1 /* ; */; DELETE FROM incidents -- ;",
    "attach-new-file": "ATTACH DATABASE '{tmp}/attached.sqlite' AS evil",
    "attach-memory": "ATTACH DATABASE ':memory:' AS evil",
    "detach": "DETACH DATABASE main",
    "vacuum": "VACUUM",
    "vacuum-into": "VACUUM INTO '{tmp}/copy.sqlite'",
    "pragma-user-version": "PRAGMA user_version = 5",
    "pragma-journal-mode": "PRAGMA journal_mode = WAL",
    "pragma-writable-schema": "PRAGMA writable_schema = ON",
    "pragma-read": "PRAGMA table_info(incidents)",
    "cte-insert": "WITH x AS (SELECT 1) INSERT INTO services (name, team, tier) SELECT 'evil', 'x', 1 FROM x",
    "cte-delete": "WITH x AS (SELECT 1) DELETE FROM incidents",
    "cte-update": "WITH x AS (SELECT 1) UPDATE incidents SET title = 'evil'",
    "explain-delete": "EXPLAIN DELETE FROM incidents",
    "load-extension": "SELECT load_extension('{tmp}/evil.so')",
    "fts3-tokenizer": "SELECT fts3_tokenizer('simple')",
    "begin": "BEGIN",
    "begin-immediate": "BEGIN IMMEDIATE",
    "savepoint": "SAVEPOINT evil",
    "release": "RELEASE evil",
    "commit": "COMMIT",
    "rollback": "ROLLBACK",
    "analyze": "ANALYZE",
    "reindex": "REINDEX",
    "leading-comment": "/* harmless */ -- really\n DELETE FROM incidents",
}
# The same attacks minus those the lexical layer alone must stop (they are not one statement).
SINGLE_STATEMENTS = {
    name: sql for name, sql in WRITE_ATTEMPTS.items() if not name.startswith("several-statements")
}
# Statements that change the database file or create files: the connection alone (read-only,
# query_only, no attachments) must refuse these even without the authorizer.
CONNECTION_REFUSES = (
    "insert", "update", "delete", "replace", "drop-table", "create-table", "create-view",
    "create-index", "alter-table", "attach-new-file", "vacuum", "vacuum-into", "pragma-user-version",
    "cte-insert", "cte-delete", "analyze", "reindex",
)  # fmt: skip


def _listing(*folders: Path) -> dict[Path, list[str]]:
    return {folder: sorted(p.name for p in folder.iterdir()) for folder in folders}


@pytest.mark.parametrize("sql", WRITE_ATTEMPTS.values(), ids=WRITE_ATTEMPTS.keys())
def test_write_attempts_are_rejected_and_change_nothing(demo_db: Path, tmp_path: Path, sql: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    before, files = sha256(demo_db), _listing(demo_db.parent, outside)
    with pytest.raises(QueryRejected) as caught:
        ReadOnlySQLite(demo_db).execute(sql.format(tmp=outside))
    message = str(caught.value)
    assert "refused" in message or "exactly one" in message
    assert str(tmp_path) not in message and "Traceback" not in message
    assert sha256(demo_db) == before
    assert _listing(demo_db.parent, outside) == files


@pytest.mark.parametrize("sql", SINGLE_STATEMENTS.values(), ids=SINGLE_STATEMENTS.keys())
def test_authorizer_alone_refuses_writes(demo_db: Path, tmp_path: Path, sql: str) -> None:
    # _run skips the lexical checks, so this proves the connection+authorizer layers on their own.
    before, files = sha256(demo_db), _listing(tmp_path)
    with pytest.raises(QueryRejected, match=r"only read-only SELECT queries are allowed; .+ is refused"):
        ReadOnlySQLite(demo_db)._run(sql.format(tmp=tmp_path))
    assert sha256(demo_db) == before
    assert _listing(tmp_path) == files


@pytest.mark.parametrize("name", CONNECTION_REFUSES)
def test_read_only_connection_alone_refuses_writes(demo_db: Path, tmp_path: Path, name: str) -> None:
    before, files = sha256(demo_db), _listing(tmp_path)
    conn = open_read_only(demo_db)
    try:
        with pytest.raises(sqlite3.Error):
            conn.execute(WRITE_ATTEMPTS[name].format(tmp=tmp_path))
    finally:
        conn.close()
    assert sha256(demo_db) == before
    assert _listing(tmp_path) == files


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("INSERT INTO services (name) VALUES ('x')", "INSERT is refused"),
        ("WITH x AS (SELECT 1) DELETE FROM incidents", "DELETE on incidents is refused"),
        ("WITH x AS (SELECT 1) UPDATE incidents SET title = ''", "UPDATE on incidents is refused"),
        ("SELECT load_extension('x')", "the function load_extension() is refused"),
        ("PRAGMA writable_schema = ON", "PRAGMA is refused; to inspect the schema"),
        ("VACUUM INTO 'x.sqlite'", "VACUUM is refused"),
    ],
)
def test_refusals_name_the_operation(demo_db: Path, sql: str, fragment: str) -> None:
    with pytest.raises(QueryRejected) as caught:
        ReadOnlySQLite(demo_db).execute(sql)
    assert str(caught.value).startswith(f"only read-only SELECT queries are allowed; {fragment}")


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("BEGIN", "transaction control (BEGIN)"),
        ("SAVEPOINT s", "transaction control (BEGIN)"),
        ("PRAGMA user_version = 5", "PRAGMA user_version"),
        ("CREATE TABLE t (x)", "changing the schema (INSERT on sqlite_master)"),
        ("ATTACH DATABASE ':memory:' AS x", "ATTACH"),
        ("ALTER TABLE incidents RENAME TO x", "ALTER TABLE"),
    ],
)
def test_authorizer_refusals_name_the_operation(demo_db: Path, sql: str, fragment: str) -> None:
    with pytest.raises(QueryRejected, match="is refused") as caught:
        ReadOnlySQLite(demo_db)._run(sql)
    assert fragment in str(caught.value)


def test_connection_layers_are_configured(demo_db: Path) -> None:
    conn = open_read_only(demo_db)
    try:
        assert conn.execute("PRAGMA query_only").fetchone() == (1,)
        assert conn.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED) == 0
        assert conn.in_transaction is False
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("PRAGMA query_only = 0").close()
            conn.execute("DELETE FROM incidents")  # mode=ro still refuses with query_only off
    finally:
        conn.close()


def test_select_returns_columns_and_rows(demo_db: Path) -> None:
    result = ReadOnlySQLite(demo_db).execute(
        "SELECT name, tier FROM services WHERE team = 'commerce' ORDER BY name"
    )
    assert result.columns == ["name", "tier"]
    assert result.rows == [["checkout-api", 1], ["inventory", 2]]
    assert result.row_count == 2
    assert not result.truncated


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM deployments;",
        "SELECT count(*) FROM deployments ;; -- trailing comment",
        "-- leading comment\nSELECT count(*) FROM deployments /* ; */",
        "  \n\tselect COUNT(*) from deployments\n",
        "WITH d AS (SELECT * FROM deployments) SELECT count(*) FROM d",
    ],
)
def test_comments_whitespace_and_trailing_semicolons_are_fine(demo_db: Path, sql: str) -> None:
    assert ReadOnlySQLite(demo_db).execute(sql).rows == [[77]]


def test_semicolons_inside_literals_are_not_statement_breaks(demo_db: Path) -> None:
    result = ReadOnlySQLite(demo_db).execute("""SELECT 'a;b' AS "c;d", 'it''s; fine' AS [e;f]""")
    assert result.columns == ["c;d", "e;f"]
    assert result.rows == [["a;b", "it's; fine"]]


def test_values_and_explain_query_plan_are_reads(demo_db: Path) -> None:
    db = ReadOnlySQLite(demo_db)
    assert db.execute("VALUES (1, 'x')").rows == [[1, "x"]]
    assert db.execute("EXPLAIN QUERY PLAN SELECT * FROM incidents WHERE service = 'search'").row_count >= 1


def test_row_cap_truncates(demo_db: Path) -> None:
    db = ReadOnlySQLite(demo_db, row_limit=3)
    result = db.execute("SELECT id FROM deployments ORDER BY id")
    assert result.rows == [[1], [2], [3]]
    assert result.row_count == 3
    assert result.truncated
    exact = db.execute("SELECT id FROM deployments ORDER BY id LIMIT 3")
    assert exact.row_count == 3
    assert not exact.truncated


def test_runaway_query_is_stopped_by_the_time_limit(demo_db: Path) -> None:
    db = ReadOnlySQLite(demo_db, time_limit=0.2)
    started = time.monotonic()
    with pytest.raises(QueryRejected, match=r"exceeded the 0\.2 s time limit"):
        db.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c")
    assert time.monotonic() - started < 2


def test_blobs_become_hex_and_non_finite_floats_strings(demo_db: Path) -> None:
    result = ReadOnlySQLite(demo_db).execute("SELECT x'00ff10', 1e999, -1e999, 1.5, NULL")
    assert result.rows == [["00ff10", "Infinity", "-Infinity", 1.5, None]]


def test_oversized_values_are_refused(demo_db: Path) -> None:
    with pytest.raises(QueryRejected, match="size limit"):
        ReadOnlySQLite(demo_db).execute("SELECT zeroblob(5000000)")


@pytest.mark.parametrize(
    ("sql", "pattern"),
    [
        ("SELECT * FORM incidents", 'syntax error near "FORM"'),
        ("SELECT (1", "syntax error: incomplete input"),
        ("SELECT 'unterminated", "syntax error: unrecognized token"),
        ("SELEC * FROM incidents", "must start with SELECT, WITH, VALUES or EXPLAIN, not 'SELEC'"),
        ("SELECT * FROM incident", "no such table: incident; tables are: deployments, incidents, services"),
        ("SELECT nope FROM services", r"no such column: nope; available columns: .*services\(name, team"),
        ("SELECT * FROM incidents WHERE id = ?", "query parameters"),
        ("SELECT * FROM json_each('[1]')", "table-valued functions such as json_each are not available"),
    ],
)
def test_errors_are_explained(demo_db: Path, sql: str, pattern: str) -> None:
    with pytest.raises(QueryRejected, match=pattern):
        ReadOnlySQLite(demo_db).execute(sql)


@pytest.mark.parametrize("sql", ["", "   \n", ";", " ; ; ", "-- just a comment", "/* nothing */"])
def test_empty_sql_is_rejected(demo_db: Path, sql: str) -> None:
    with pytest.raises(QueryRejected, match="empty"):
        ReadOnlySQLite(demo_db).execute(sql)


def test_overlong_sql_is_rejected(demo_db: Path) -> None:
    with pytest.raises(QueryRejected, match="longer than"):
        ReadOnlySQLite(demo_db).execute("SELECT 1 " + " " * 30_000)


def test_tables_lists_columns(demo_db: Path) -> None:
    tables = ReadOnlySQLite(demo_db).tables()
    assert sorted(tables) == ["deployments", "incidents", "services"]
    assert tables["services"][:3] == ["name", "team", "tier"]
    assert {"status", "environment", "commit_sha"} <= set(tables["deployments"])


def test_path_with_uri_special_characters(tmp_path: Path, demo_db: Path) -> None:
    odd = tmp_path / "we?ird #dir %20"
    odd.mkdir()
    moved = demo_db.rename(odd / "demo.sqlite")
    assert ReadOnlySQLite(moved).execute("SELECT count(*) FROM services").rows == [[10]]


def test_constructor_validates_arguments(demo_db: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="row_limit"):
        ReadOnlySQLite(demo_db, row_limit=0)
    with pytest.raises(ValueError, match="time_limit"):
        ReadOnlySQLite(demo_db, time_limit=0)
    with pytest.raises(FileNotFoundError):
        ReadOnlySQLite(tmp_path / "missing.sqlite")
