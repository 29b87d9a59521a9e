"""What the demo's SQL tools need from a database, whichever engine serves it.

Two kinds of statement reach a database: the caller's *untrusted* SQL (``query``), which every
backend checks and confines to reads in several independent layers, and the demo's own fixed,
parameterised statements (``fetch``), written with ``?`` placeholders and still run read-only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar

__all__ = [
    "DatabaseUnavailable",
    "JSONScalar",
    "MAX_RESULT_BYTES",
    "MAX_SQL_LENGTH",
    "QueryRejected",
    "QueryResult",
    "READ_ONLY",
    "ReadOnlyDatabase",
    "TOO_BIG",
    "non_finite",
    "one_statement",
    "time_limit_exceeded",
]

Statement = TypeVar("Statement")

JSONScalar: TypeAlias = str | int | float | None

# The size cap on what one query may return, the same whichever engine serves it.
MAX_RESULT_BYTES = 1_000_000
TOO_BIG = "a value in the query or its result exceeds the 1 MB size limit"
# The same rules and words for the caller's SQL, whichever engine checks it.
MAX_SQL_LENGTH = 20_000
READ_ONLY = "only read-only SELECT queries are allowed"


class QueryRejected(Exception):
    """The query was refused or failed; the message says why and what to change."""


class DatabaseUnavailable(QueryRejected):
    """The database cannot be reached right now; the message names no host, user or password."""


@dataclass(frozen=True)
class QueryResult:
    """Rows of a successful query. ``truncated`` is true when more rows existed than were returned."""

    columns: list[str]
    rows: list[list[JSONScalar]]
    row_count: int
    truncated: bool


class ReadOnlyDatabase(Protocol):
    """A database the demo may read and never change."""

    @property
    def dialect(self) -> str:
        """The SQL dialect to name in tool descriptions, e.g. ``SQLite`` or ``PostgreSQL``."""
        ...

    async def open(self) -> None:
        """Acquire resources (a pool); raise :class:`DatabaseUnavailable` if the database is down."""
        ...

    async def query(self, sql: str) -> QueryResult:
        """Run one untrusted statement, refusing anything but a read."""
        ...

    async def fetch(self, sql: str, parameters: Sequence[object] = ()) -> list[dict[str, Any]]:
        """Run one of the demo's own read statements (``?`` placeholders) and return its rows."""
        ...

    async def tables(self) -> dict[str, list[str]]:
        """Table and view names mapped to their column names."""
        ...

    async def ping(self) -> None:
        """Return when the database answers; raise :class:`DatabaseUnavailable` otherwise."""
        ...

    async def aclose(self) -> None:
        """Release every resource; the object cannot be used afterwards."""
        ...


def one_statement(sql: str, split: Callable[[str], Sequence[Statement]]) -> Statement:
    """The only statement ``split`` finds in ``sql``; QueryRejected if it is too long, empty or several."""
    if len(sql) > MAX_SQL_LENGTH:
        raise QueryRejected(f"the query is longer than {MAX_SQL_LENGTH} characters")
    statements = split(sql)
    if not statements:
        raise QueryRejected("the query is empty; send one SELECT statement")
    if len(statements) > 1:
        raise QueryRejected(f"send exactly one SQL statement; found {len(statements)} separated by ';'")
    return statements[0]


def time_limit_exceeded(seconds: float) -> str:
    return (
        f"the query exceeded the {seconds:g} s time limit and was stopped; "
        "filter with WHERE, add a LIMIT, or bound recursive CTEs"
    )


def non_finite(number: float) -> str | None:
    """How a NaN or an infinity is spelled in results (JSON has neither); None for finite numbers."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return None
