"""Spans for the demo's database calls, composed only when tracing is on.

Each call is a CLIENT span of the tool run that made it, named and attributed per the
OpenTelemetry database conventions. The caller's SQL is untrusted and may hold literal values,
so its text is never recorded (only its operation keyword); the demo's own fixed statements use
placeholders and are recorded as ``db.query.text``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from mcpserve._version import __version__
from mcpserve.observability.tracing import operation_span

from .base import QueryResult, ReadOnlyDatabase

__all__ = ["TracedDatabase", "database_attributes"]

T = TypeVar("T")
_FIRST_WORD: Final = re.compile(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*([A-Za-z]+)", re.DOTALL)
# Operation names kept as they are; anything else is reported as "QUERY" (bounded cardinality).
_OPERATIONS: Final = frozenset({"SELECT", "WITH", "VALUES", "EXPLAIN", "TABLE", "SHOW"})


def _operation(sql: str) -> str:
    match = _FIRST_WORD.match(sql)
    word = match.group(1).upper() if match else ""
    return word if word in _OPERATIONS else "QUERY"


def database_attributes(dialect: str, url: str | None) -> dict[str, Any]:
    """``db.system.name`` and, for a server, where it is (never the user or password)."""
    if dialect != "PostgreSQL":
        return {"db.system.name": "sqlite"}
    attributes: dict[str, Any] = {"db.system.name": "postgresql"}
    if url is not None:
        parts = urlsplit(url)
        if parts.hostname:
            attributes["server.address"] = parts.hostname
            attributes["server.port"] = parts.port or 5432
        if parts.path.strip("/"):
            attributes["db.namespace"] = parts.path.strip("/")
    return attributes


class TracedDatabase:
    """A :class:`ReadOnlyDatabase` whose queries are spans; everything else passes through."""

    def __init__(self, database: ReadOnlyDatabase, url: str | None = None) -> None:
        self._database = database
        self._attributes = database_attributes(database.dialect, url)
        self._tracer = trace.get_tracer("mcpserve.demo.sql", __version__)

    @property
    def dialect(self) -> str:
        return self._database.dialect

    async def open(self) -> None:
        await self._database.open()

    async def query(self, sql: str) -> QueryResult:
        result = await self._traced(_operation(sql), {}, lambda: self._database.query(sql))
        return result

    async def fetch(self, sql: str, parameters: Sequence[object] = ()) -> list[dict[str, Any]]:
        return await self._traced(
            _operation(sql), {"db.query.text": sql}, lambda: self._database.fetch(sql, parameters)
        )

    async def tables(self) -> dict[str, list[str]]:
        return await self._database.tables()

    async def ping(self) -> None:
        await self._database.ping()

    async def aclose(self) -> None:
        await self._database.aclose()

    async def _traced(self, operation: str, extra: dict[str, Any], work: Callable[[], Awaitable[T]]) -> T:
        # Outside a recorded span (readiness probes, unsampled requests) a span would only be noise.
        if not trace.get_current_span().is_recording():
            return await work()
        attributes = {**self._attributes, "db.operation.name": operation, **extra}
        with operation_span(self._tracer, operation, SpanKind.CLIENT, attributes) as span:
            result = await work()
            rows = result.row_count if isinstance(result, QueryResult) else len(result)  # type: ignore[arg-type]
            span.set_attribute("db.response.returned_rows", rows)
            return result
