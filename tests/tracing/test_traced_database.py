"""The demo's database calls as spans, on the bundled SQLite database and the real SDK."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from mcpserve.demo.sql import QueryRejected, SQLiteDatabase
from mcpserve.demo.sql.traced import TracedDatabase, database_attributes
from mcpserve.observability.tracing import operation_span, tracer
from tests.demo.support import BUNDLED_DB

from .conftest import Recorded

pytestmark = pytest.mark.anyio


async def test_queries_inside_a_request_are_client_spans_and_the_rest_passes_through(spans: Recorded) -> None:
    database = TracedDatabase(SQLiteDatabase(BUNDLED_DB))
    assert database.dialect == "SQLite"
    await database.open()
    await database.ping()
    assert "services" in await database.tables()
    assert (await database.query("SELECT 1")).rows == [[1]]  # no request span: no span of its own
    assert spans.all() == []
    with operation_span(tracer(), "tools/call x", SpanKind.SERVER, {}):
        result = await database.query("/* why */ -- and how\n with t as (select 1) select * from t")
        rows = await database.fetch("SELECT name FROM services WHERE name = ?", ["checkout-api"])
        with pytest.raises(QueryRejected):
            await database.query("PRAGMA table_info(services)")
    await database.aclose()
    assert result.row_count == 1 and rows == [{"name": "checkout-api"}]
    request = spans.named("tools/call x")
    query, fetch, refused = (span for span in spans.all() if span.kind is SpanKind.CLIENT)
    assert (query.name, fetch.name, refused.name) == ("WITH", "SELECT", "QUERY")
    assert all(
        span.parent is not None and span.parent.span_id == request.context.span_id for span in (query, fetch)
    )
    assert dict(query.attributes or {}) == {
        "db.system.name": "sqlite",
        "db.operation.name": "WITH",
        "db.response.returned_rows": 1,
    }
    assert (fetch.attributes or {})["db.query.text"] == "SELECT name FROM services WHERE name = ?"
    assert (refused.attributes or {})["error.type"] == "QueryRejected"
    assert refused.status.status_code is StatusCode.ERROR


def test_server_attributes_never_name_the_user_or_password() -> None:
    url = "postgresql://reader:s3cret@db.internal:6432/ops?sslmode=require"
    assert database_attributes("PostgreSQL", url) == {
        "db.system.name": "postgresql",
        "server.address": "db.internal",
        "server.port": 6432,
        "db.namespace": "ops",
    }
    assert database_attributes("PostgreSQL", "postgresql:///ops?host=/run/postgresql") == {
        "db.system.name": "postgresql",
        "db.namespace": "ops",
    }
    assert database_attributes("PostgreSQL", None) == {"db.system.name": "postgresql"}
    assert database_attributes("SQLite", "sqlite:///x.db") == {"db.system.name": "sqlite"}


async def test_operation_spans_tell_control_flow_and_cancellation_from_failures(spans: Recorded) -> None:
    class Question(Exception):
        pass

    with pytest.raises(Question), operation_span(tracer(), "asks", SpanKind.INTERNAL, {}, (Question,)):
        raise Question
    with pytest.raises(asyncio.CancelledError), operation_span(tracer(), "stopped", SpanKind.CLIENT, {}):
        raise asyncio.CancelledError
    assert spans.named("asks").status.status_code is StatusCode.UNSET
    assert (spans.named("stopped").attributes or {})["error.type"] == "cancelled"
