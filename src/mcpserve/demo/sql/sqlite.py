"""Read-only SQL over a SQLite file (the bundled demo by default), safe to hand to a language model.

The caller's SQL is untrusted, so writes are refused by several independent layers, each of which
would stop them alone:

1. a lexical check: exactly one statement, and it must start with SELECT, WITH, VALUES or EXPLAIN;
2. the connection: opened ``mode=ro&immutable=1`` (no write access, no lock or journal side files),
   ``PRAGMA query_only``, extension loading off, and ``SQLITE_LIMIT_ATTACHED = 0``;
3. an authorizer that permits only reads (SELECT, READ, RECURSIVE and non-dangerous functions).

Layer 2 alone is not enough: a read-only main database still lets ``ATTACH`` and ``VACUUM INTO``
create new files elsewhere, and ``PRAGMA writable_schema`` or ``BEGIN`` still succeed. Resource use is
bounded too: a row cap, a wall-clock limit enforced by a progress handler, and a maximum value size.

Every refusal is a :class:`QueryRejected` whose message tells the model what to change; it never
contains file paths or tracebacks.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio.to_thread

from .base import (
    MAX_RESULT_BYTES,
    MAX_SQL_LENGTH,
    READ_ONLY,
    TOO_BIG,
    JSONScalar,
    QueryRejected,
    QueryResult,
    non_finite,
    one_statement,
    time_limit_exceeded,
)

__all__ = ["ReadOnlySQLite", "SQLiteDatabase", "open_read_only"]

# Per-connection SQLite limits: values (strings/blobs) up to 1 MB, and no attached databases at all,
# which also disables VACUUM INTO (it attaches its output file).
_CONNECTION_LIMITS = (
    (sqlite3.SQLITE_LIMIT_LENGTH, MAX_RESULT_BYTES),
    (sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_LENGTH * 4),
    (sqlite3.SQLITE_LIMIT_ATTACHED, 0),
)
_PROGRESS_INTERVAL = 1_000  # VM instructions between deadline checks: microseconds of work

_READ_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "EXPLAIN"})
_WRITE_KEYWORDS = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "ATTACH", "DETACH",
        "VACUUM", "PRAGMA", "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "ANALYZE",
        "REINDEX",
    }
)  # fmt: skip
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})
# Functions that touch files, load code, or leak pointers (fts3_tokenizer returns a C function address).
# readfile/writefile/edit exist only in the sqlite3 shell but are listed in case an extension adds them.
_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})
_ACTION_NAMES: dict[int, str] = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in (
        "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER",
        "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_VIEW", "CREATE_VTABLE", "DELETE", "DROP_INDEX",
        "DROP_TABLE", "DROP_TEMP_INDEX", "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW",
        "DROP_TRIGGER", "DROP_VIEW", "DROP_VTABLE", "INSERT", "PRAGMA", "TRANSACTION", "UPDATE",
        "ATTACH", "DETACH", "ALTER_TABLE", "REINDEX", "ANALYZE", "SAVEPOINT", "FUNCTION",
    )
}  # fmt: skip
_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema"})
# (text in a SQLite or sqlite3 error message, advice for the query's author), first match wins.
_ADVICE = (
    ("incomplete input", "syntax error: {message}; check for unbalanced quotes or parentheses"),
    ("unrecognized token", "syntax error: {message}; check for unbalanced quotes or parentheses"),
    ("Incorrect number of bindings", "query parameters (?, :name) are not supported; write literal values"),
    ("one statement at a time", "send exactly one SQL statement"),
    ("readonly", f"{READ_ONLY}; the database cannot be modified"),
    ("too big", TOO_BIG),
)


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open ``path`` read-only with the connection-level protections (no authorizer).

    ``immutable=1`` tells SQLite the file cannot change, so it takes no locks and never creates
    ``-journal``/``-wal``/``-shm`` files; the database file's bytes are never touched.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)  # no implicit BEGIN
    try:
        conn.execute("PRAGMA query_only = 1")
        if hasattr(conn, "enable_load_extension"):  # absent when Python is built without it
            conn.enable_load_extension(False)
        for limit, value in _CONNECTION_LIMITS:
            conn.setlimit(limit, value)
    except BaseException:
        conn.close()
        raise
    return conn


class ReadOnlySQLite:
    """Runs one untrusted, read-only SQL statement at a time against a SQLite file.

    Thread-safe: every call opens its own connection (cheap for a local file).
    """

    def __init__(self, path: Path, *, row_limit: int = 500, time_limit: float = 5.0) -> None:
        if row_limit < 1:
            raise ValueError("row_limit must be at least 1")
        if not time_limit > 0:
            raise ValueError("time_limit must be positive")
        if not path.is_file():
            raise FileNotFoundError(f"no SQLite database at {path}")
        self._path = path
        self._row_limit = row_limit
        self._time_limit = time_limit
        self._tables: dict[str, list[str]] | None = None

    def execute(self, sql: str) -> QueryResult:
        """Run one read-only statement and return at most ``row_limit`` rows."""
        return self._run(_single_read_statement(sql))

    def tables(self) -> dict[str, list[str]]:
        """Table (and view) names mapped to their column names, in schema order."""
        if self._tables is None:
            listing = self._run(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            )
            names = [str(row[0]) for row in listing.rows]
            self._tables = {name: self._columns(name) for name in names}
        return {name: list(columns) for name, columns in self._tables.items()}

    def _columns(self, table: str) -> list[str]:
        quoted = table.replace('"', '""')
        return self._run(f'SELECT * FROM "{quoted}" LIMIT 0').columns  # noqa: S608 - name read from the schema

    def _run(self, statement: str) -> QueryResult:
        """Execute one statement under the authorizer, deadline and row cap (no lexical checks)."""
        guard = _Guard(self._time_limit)
        conn = open_read_only(self._path)
        try:
            conn.set_authorizer(guard.authorize)
            conn.set_progress_handler(guard.progress, _PROGRESS_INTERVAL)
            cursor = conn.execute(statement)
            if cursor.description is None:
                raise QueryRejected("the SQL contains no query; send one SELECT statement")
            columns = [str(column[0]) for column in cursor.description]
            rows = cursor.fetchmany(self._row_limit + 1)
        except sqlite3.Error as exc:
            raise QueryRejected(self._explain(exc, guard)) from exc
        finally:
            conn.close()
        truncated = len(rows) > self._row_limit
        result_rows = [[_json_value(value) for value in row] for row in rows[: self._row_limit]]
        return QueryResult(columns, result_rows, len(result_rows), truncated)

    def _explain(self, exc: sqlite3.Error, guard: _Guard) -> str:
        """Turn a SQLite error into advice; the guard knows about timeouts and refused operations."""
        message = str(exc)
        if guard.timed_out:
            return time_limit_exceeded(self._time_limit)
        if message.startswith("vtable constructor failed"):
            table = message.rpartition(":")[2].strip()
            return (
                f"table-valued functions such as {table} are not available; query the tables directly "
                f"(tables are: {', '.join(self.tables())})"
            )
        if guard.denied is not None:
            return f"{READ_ONLY}; {guard.denied} is refused"
        return self._explain_sqlite_message(message)

    def _explain_sqlite_message(self, message: str) -> str:
        if message.startswith("no such table"):
            return f"{message}; tables are: {', '.join(self.tables())}"
        if message.startswith("no such column"):
            schema = "; ".join(f"{name}({', '.join(cols)})" for name, cols in self.tables().items())
            return f"{message}; available columns: {schema}"
        if message.endswith("syntax error"):  # SQLite says 'near "X": syntax error'
            return f"syntax error {message.removesuffix(': syntax error')} (SQLite SQL dialect)"
        for needle, advice in _ADVICE:
            if needle in message:
                return advice.format(message=message)
        return f"the query failed: {message}"


class SQLiteDatabase:
    """:class:`ReadOnlySQLite` behind the async ``ReadOnlyDatabase`` interface (work runs in threads)."""

    dialect = "SQLite"

    def __init__(self, path: Path, *, row_limit: int = 500, time_limit: float = 5.0) -> None:
        self._path = path
        self._database = ReadOnlySQLite(path, row_limit=row_limit, time_limit=time_limit)

    async def open(self) -> None:
        """Nothing to open: every query opens its own connection to the local file."""

    async def query(self, sql: str) -> QueryResult:
        return await anyio.to_thread.run_sync(self._database.execute, sql)

    async def fetch(self, sql: str, parameters: Sequence[object] = ()) -> list[dict[str, Any]]:
        return await anyio.to_thread.run_sync(self._fetch, sql, parameters)

    async def tables(self) -> dict[str, list[str]]:
        return await anyio.to_thread.run_sync(self._database.tables)

    def tables_now(self) -> dict[str, list[str]]:
        """:meth:`tables` without a thread hop, for building tool descriptions before serving."""
        return self._database.tables()

    async def ping(self) -> None:
        await self.fetch("SELECT 1")

    async def aclose(self) -> None:
        """Nothing to close."""

    def _fetch(self, sql: str, parameters: Sequence[object]) -> list[dict[str, Any]]:
        with closing(open_read_only(self._path)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, tuple(parameters))]


class _Guard:
    """Per-query authorizer and progress handler, remembering why SQLite stopped."""

    def __init__(self, time_limit: float) -> None:
        self.deadline = time.monotonic() + time_limit
        self.timed_out = False
        self.denied: str | None = None

    def authorize(
        self, action: int, arg1: str | None, arg2: str | None, db_name: str | None, trigger: str | None
    ) -> int:
        if action in _ALLOWED_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in _DENIED_FUNCTIONS:
            return sqlite3.SQLITE_OK
        if self.denied is None:  # the first refusal is the one the statement tripped over
            self.denied = _describe_action(action, arg1, arg2)
        return sqlite3.SQLITE_DENY

    def progress(self) -> int:
        if time.monotonic() < self.deadline:
            return 0
        self.timed_out = True
        return 1  # non-zero aborts the statement with "interrupted"


def _describe_action(action: int, arg1: str | None, arg2: str | None) -> str:
    """Name a refused authorizer action the way a SQL author would recognise it."""
    name = _ACTION_NAMES.get(action, f"operation {action}")
    if action == sqlite3.SQLITE_FUNCTION:
        return f"the function {arg2}()"
    if action == sqlite3.SQLITE_PRAGMA:
        return f"PRAGMA {arg1}"
    if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
        return f"transaction control ({arg1})"
    if arg1 in _SCHEMA_TABLES:
        return f"changing the schema ({name} on {arg1})"
    if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE) and arg1:
        return f"{name} on {arg1}"
    return name


def _single_read_statement(sql: str) -> str:
    """The one statement in ``sql`` if it is a read; otherwise QueryRejected with the reason."""
    statement = one_statement(sql, _split_statements)
    keyword = _first_word(statement).upper()
    if keyword in _WRITE_KEYWORDS:
        hint = "; to inspect the schema, SELECT name, sql FROM sqlite_master" if keyword == "PRAGMA" else ""
        raise QueryRejected(f"{READ_ONLY}; {keyword} is refused{hint}")
    if keyword not in _READ_KEYWORDS:
        raise QueryRejected(
            f"the query must start with SELECT, WITH, VALUES or EXPLAIN, not {keyword[:40]!r}"
        )
    return statement


def _split_statements(sql: str) -> list[str]:
    """Split on top-level semicolons (not inside quotes or comments); drop empty statements."""
    pieces: list[str] = []
    start = index = 0
    while index < len(sql):
        char = sql[index]
        if char in "'\"`[":
            index = _skip_quoted(sql, index)
        elif sql.startswith(("--", "/*"), index):
            index = _skip_comment(sql, index)
        elif char == ";":
            pieces.append(sql[start:index])
            start = index = index + 1
        else:
            index += 1
    pieces.append(sql[start:])
    return [piece for piece in pieces if _first_word(piece)]


def _first_word(text: str) -> str:
    """The first keyword (or character) after whitespace and comments; empty if there is none."""
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
        elif text.startswith(("--", "/*"), index):
            index = _skip_comment(text, index)
        else:
            match = _WORD.match(text, index)
            return match.group(0) if match else text[index]
    return ""


def _skip_quoted(sql: str, start: int) -> int:
    """Index just past the string or quoted identifier opening at ``start``."""
    close = "]" if sql[start] == "[" else sql[start]
    index = start + 1
    while True:
        end = sql.find(close, index)
        if end == -1:
            return len(sql)  # unterminated: SQLite will report the error
        if close != "]" and sql.startswith(close, end + 1):  # a doubled quote escapes itself
            index = end + 2
            continue
        return end + 1


def _skip_comment(sql: str, start: int) -> int:
    """Index just past the ``--`` or ``/* */`` comment opening at ``start``."""
    if sql.startswith("--", start):
        end = sql.find("\n", start)
        return len(sql) if end == -1 else end + 1
    end = sql.find("*/", start + 2)
    return len(sql) if end == -1 else end + 2


def _json_value(value: object) -> JSONScalar:
    """SQLite values as JSON-native ones: blobs become hex, non-finite floats become strings."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return non_finite(value)
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)
