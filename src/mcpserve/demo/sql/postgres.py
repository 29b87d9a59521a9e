"""Read-only SQL over PostgreSQL through an asyncpg pool, safe to hand to a language model.

Writes are refused by independent layers, because the connecting role may well be able to write
(on a developer machine it is often a superuser):

1. the lexical check in :mod:`.postgres_guard` (one statement, a read, no refused words or names);
2. the extended query protocol, which the server refuses for more than one statement;
3. every statement runs in ``BEGIN READ ONLY`` with ``default_transaction_read_only`` on for the
   session too, so a write anywhere, including inside a user-defined function, fails with
   SQLSTATE 25006; the transaction is always rolled back, which also undoes any setting a function
   changed, so nothing leaks into the next use of the pooled connection;
4. ``SET LOCAL statement_timeout`` bounds the work, and a row cap bounds the result.

The result's size is capped like SQLite's (1 MB) on the server: the statement runs nested in one
that keeps a running total of the rows' text size and sends NULLs plus an "over" flag once the
total passes the cap, so an oversized value is refused without being transferred or buffered.

The role should still be a least-privilege one (docs/database.md); a superuser gets a warning.
"""

from __future__ import annotations

import datetime
import decimal
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias, TypeVar

import anyio
import asyncpg
import orjson

from .base import (
    MAX_RESULT_BYTES,
    READ_ONLY,
    TOO_BIG,
    DatabaseUnavailable,
    JSONScalar,
    QueryRejected,
    QueryResult,
    non_finite,
    time_limit_exceeded,
)
from .postgres_guard import read_only_statement, tokenize

__all__ = ["PostgresDatabase"]

logger = logging.getLogger("mcpserve.demo.sql")

T = TypeVar("T")
_Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

_CONNECT_TIMEOUT = 5.0  # seconds; readiness and startup must not hang on an unreachable host
_CLOSE_TIMEOUT = 10.0
_PLACEHOLDER = re.compile(r"\?")
# Connection-level failures worth one retry on a fresh connection (reads are safe to repeat):
# class 08 (connection exception) and 57P01-57P03 (server shutting down or starting up).
_RETRY_SQLSTATES = ("08", "57P01", "57P02", "57P03")
# SQLSTATE → advice: 25006 read-only transaction, 42601 syntax, 42501 privilege, 0A000 unsupported.
_ADVICE = {
    "25006": READ_ONLY + "; the database cannot be modified ({message})",
    "42601": "syntax error: {message} (PostgreSQL SQL dialect)",
    "42501": READ_ONLY + "; {message}",
    "0A000": "not supported here: {message}",
}
_TABLES_SQL = """
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = ANY (current_schemas(false))
ORDER BY table_name, ordinal_position
"""


class PostgresDatabase:
    """An asyncpg pool that runs untrusted reads and the demo's fixed queries, read-only."""

    dialect = "PostgreSQL"

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 20,
        idle_timeout: float = 30.0,
        statement_timeout: float = 5.0,
        row_limit: int = 500,
    ) -> None:
        if row_limit < 1:
            raise ValueError("row_limit must be at least 1")
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._idle_timeout = idle_timeout
        self._statement_timeout = statement_timeout
        self._row_limit = row_limit
        self._pool: asyncpg.Pool | None = None
        self._lock = anyio.Lock()
        self._closed = False
        # Per transaction, in one round trip: read-only, bounded in time, lexed the way
        # postgres_guard lexes; the closing SELECT takes the snapshot, after which PostgreSQL refuses
        # SET TRANSACTION READ WRITE ("must be set before any query").
        self._begin = (
            "BEGIN TRANSACTION READ ONLY; "
            f"SET LOCAL statement_timeout = {max(1, round(statement_timeout * 1000))}; "
            "SET LOCAL default_transaction_read_only = on; "
            "SET LOCAL standard_conforming_strings = on; "
            "SELECT 1"
        )

    async def open(self) -> None:
        """Open the pool; warn when the role is a superuser (allowed, but more than reads need)."""
        await self._ensure_pool()
        superuser = await self._run(lambda conn: conn.fetchval("SELECT current_setting('is_superuser')"))
        if superuser == "on":
            logger.warning(
                "the PostgreSQL role for MCPSERVE_DATABASE_URL is a superuser; queries stay read-only, "
                "but connect with a least-privilege role (see docs/database.md)"
            )

    async def query(self, sql: str) -> QueryResult:
        statement = read_only_statement(sql)
        return await self._run(lambda conn: self._query(conn, statement))

    async def fetch(self, sql: str, parameters: Sequence[object] = ()) -> list[dict[str, Any]]:
        numbered = _numbered_placeholders(sql)
        records = await self._run(lambda conn: conn.fetch(numbered, *parameters))
        return [{key: _json_value(value) for key, value in record.items()} for record in records]

    async def tables(self) -> dict[str, list[str]]:
        tables: dict[str, list[str]] = {}
        for row in await self.fetch(_TABLES_SQL):
            tables.setdefault(str(row["table_name"]), []).append(str(row["column_name"]))
        return tables

    async def ping(self) -> None:
        await self._run(lambda conn: conn.fetchval("SELECT 1"))

    async def aclose(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        with anyio.move_on_after(_CLOSE_TIMEOUT) as waited:
            await pool.close()
        if waited.cancelled_caught:
            pool.terminate()

    # -- running ------------------------------------------------------------------------------------
    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._closed:
                raise DatabaseUnavailable("the database connection pool is closed")
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=self._min_size,
                        max_size=self._max_size,
                        max_inactive_connection_lifetime=self._idle_timeout,
                        timeout=_CONNECT_TIMEOUT,
                        command_timeout=self._statement_timeout + _CONNECT_TIMEOUT,
                        server_settings={
                            "application_name": "mcpserve",
                            "default_transaction_read_only": "on",
                        },
                    )
                except Exception as exc:
                    raise DatabaseUnavailable(_unavailable(exc)) from None
            return self._pool

    async def _run(self, work: Callable[[_Connection], Awaitable[T]]) -> T:
        """``work`` on a pooled connection inside a read-only transaction that is rolled back.

        A connection that died (server restart, failover) is retried once on a fresh one.
        """
        pool = await self._ensure_pool()
        for attempt in (1, 2):
            try:
                async with pool.acquire(timeout=_CONNECT_TIMEOUT) as conn:
                    await conn.execute(self._begin)
                    try:
                        return await work(conn)
                    finally:
                        if not conn.is_closed():
                            await conn.execute("ROLLBACK")
            except asyncpg.PostgresError as exc:
                if attempt == 1 and _is_connection_failure(exc):
                    continue
                if _is_connection_failure(exc):
                    raise DatabaseUnavailable(_unavailable(exc)) from None
                raise QueryRejected(await self._explain(exc)) from None
            except (OSError, asyncpg.InterfaceError, TimeoutError) as exc:
                if attempt == 1 and not isinstance(exc, TimeoutError):
                    continue
                raise DatabaseUnavailable(_unavailable(exc)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _query(self, conn: _Connection, statement: str) -> QueryResult:
        prepared = await conn.prepare(statement)
        columns = [attribute.name for attribute in prepared.get_attributes()]
        capped = bool(columns) and not _is_explain(statement)  # EXPLAIN cannot be nested; its plan is small
        if capped:
            prepared = await conn.prepare(_size_capped(statement, len(columns)))
        cursor = await prepared.cursor()
        records = await cursor.fetch(self._row_limit + 1)
        truncated = len(records) > self._row_limit
        rows: list[list[JSONScalar]] = []
        for record in records[: self._row_limit]:
            values = list(record.values())
            if capped:
                over, *values = values
                if over:
                    raise QueryRejected(TOO_BIG)
            rows.append([_json_value(value) for value in values])
        return QueryResult(columns, rows, len(rows), truncated)

    async def _explain(self, exc: asyncpg.PostgresError) -> str:
        """Turn a server error into advice for the query's author (never a DSN or a traceback)."""
        state = exc.sqlstate or ""
        message = str(getattr(exc, "message", "") or exc)
        if state == "57014":
            return time_limit_exceeded(self._statement_timeout)
        if state == "42P01":
            return f"{message}; tables are: {', '.join(await self._table_names())}"
        advice = _ADVICE.get(state, "the query failed: {message}")
        return advice.format(message=message)

    async def _table_names(self) -> list[str]:
        try:
            return sorted(await self.tables())
        except QueryRejected:
            return []


def _size_capped(statement: str, width: int) -> str:
    """``statement`` nested so that rows past ``MAX_RESULT_BYTES`` of text arrive as NULLs, flagged.

    Columns are renamed by position (``c0``, ``c1``, ...), so duplicate or odd names cannot clash;
    the window sum keeps the input order and streams, so rows still arrive as they are produced.
    The newline ends any trailing ``--`` comment in the statement.
    """
    names = ", ".join(f"c{i}" for i in range(width))
    # Per column rather than q::text: text of a text value is free, a whole-row text copy is not.
    row_bytes = " + ".join(f"coalesce(octet_length(q.c{i}::text), 0)" for i in range(width))
    over = f"w.result_bytes > {MAX_RESULT_BYTES}"
    values = ", ".join(f"CASE WHEN {over} THEN NULL ELSE w.c{i} END" for i in range(width))
    return (
        f"SELECT {over}, {values} FROM (SELECT q.*, "  # noqa: S608 - statement passed the guard
        f"sum({row_bytes}) OVER (ROWS UNBOUNDED PRECEDING) AS result_bytes "
        f"FROM ({statement}\n) AS q({names})) AS w"
    )


def _is_explain(statement: str) -> bool:
    first = next((token for token in tokenize(statement) if token.kind == "word"), None)
    return first is not None and first.text.upper() == "EXPLAIN"


def _is_connection_failure(exc: asyncpg.PostgresError) -> bool:
    return (exc.sqlstate or "").startswith(_RETRY_SQLSTATES)


def _unavailable(exc: BaseException) -> str:
    """Why the database cannot be used, naming the failure but never the DSN or a password."""
    if isinstance(exc, asyncpg.PostgresError):
        return f"PostgreSQL refused the connection: {getattr(exc, 'message', '') or type(exc).__name__}"
    if isinstance(exc, TimeoutError):
        return "PostgreSQL did not answer in time (or every pooled connection is busy)"
    return f"cannot reach PostgreSQL ({type(exc).__name__})"


def _numbered_placeholders(sql: str) -> str:
    """The demo's fixed statements use ``?``; PostgreSQL numbers its parameters ``$1, $2, ...``."""
    counter = iter(range(1, sql.count("?") + 1))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def _json_value(value: object) -> JSONScalar:
    """PostgreSQL values as JSON-native ones, matching what the SQLite backend returns."""
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float | decimal.Decimal):
        return _json_number(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return orjson.dumps([_json_value(item) for item in value]).decode()
    return str(value)  # uuid, interval, network types, ranges, ...


def _json_number(value: float | decimal.Decimal) -> JSONScalar:
    """Integral numerics as ints, others as floats; non-finite ones spelled as SQLite's are."""
    number = float(value)
    spelled = non_finite(number)
    if spelled is not None:
        return spelled
    if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    return number
