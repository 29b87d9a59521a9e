"""What the demo's SQL tools need from a database, whichever engine serves it.

Two kinds of statement reach a database: the caller's *untrusted* SQL (``query``), which every
backend checks and confines to reads in several independent layers, and the demo's own fixed,
parameterised statements (``fetch``), written with ``?`` placeholders and still run read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

__all__ = [
    "DatabaseUnavailable",
    "JSONScalar",
    "MAX_RESULT_BYTES",
    "QueryRejected",
    "QueryResult",
    "ReadOnlyDatabase",
    "TOO_BIG",
]

JSONScalar: TypeAlias = str | int | float | None

# The size cap on what one query may return, the same whichever engine serves it.
MAX_RESULT_BYTES = 1_000_000
TOO_BIG = "a value in the query or its result exceeds the 1 MB size limit"


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
