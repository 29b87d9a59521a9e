"""Read-only SQL for the demo's tools: SQLite (the bundled database by default) or PostgreSQL.

:func:`database_for_url` picks the backend by the URL's scheme; both implement
:class:`~.base.ReadOnlyDatabase`.
"""

from __future__ import annotations

from pathlib import Path

from .base import DatabaseUnavailable, JSONScalar, QueryRejected, QueryResult, ReadOnlyDatabase
from .postgres import PostgresDatabase
from .sqlite import ReadOnlySQLite, SQLiteDatabase, open_read_only

__all__ = [
    "DatabaseUnavailable",
    "JSONScalar",
    "PostgresDatabase",
    "QueryRejected",
    "QueryResult",
    "ReadOnlyDatabase",
    "ReadOnlySQLite",
    "SQLiteDatabase",
    "database_for_url",
    "is_postgres_url",
    "open_read_only",
    "sqlite_path",
]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(url: str) -> bool:
    return url.lower().startswith(POSTGRES_SCHEMES)


def sqlite_path(url: str) -> Path:
    """The file a SQLite URL names: ``sqlite:///relative.db``, ``sqlite:////abs.db`` or a bare path."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else Path(url)


def database_for_url(
    url: str,
    *,
    min_connections: int = 1,
    max_connections: int = 20,
    idle_timeout: float = 30.0,
    statement_timeout: float = 5.0,
) -> ReadOnlyDatabase:
    """The backend for ``url`` (already validated by the settings)."""
    if is_postgres_url(url):
        return PostgresDatabase(
            url,
            min_size=min_connections,
            max_size=max_connections,
            idle_timeout=idle_timeout,
            statement_timeout=statement_timeout,
        )
    return SQLiteDatabase(sqlite_path(url), time_limit=statement_timeout)
