"""The demo server ``make serve`` runs: operations tools over bundled data, no network.

Tools: read-only SQL over a services/deployments/incidents database, deployment status, and
search over a folder of markdown runbooks (also exposed as resources); a prompt that
summarises an incident; and a rollback planner that asks the user to confirm through
elicitation (works in both protocol eras with the same code).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from mcpserve.config import Settings
from mcpserve.errors import InvalidParams, ServiceUnavailable, ToolError
from mcpserve.server.app import Completion, CompletionArgument, MCPServer, PromptReference
from mcpserve.server.content import ToolAnnotations
from mcpserve.server.context import Context

from .deployments import UnknownService, deployment_status
from .docs import DocNotFound, DocsLibrary
from .sql import DatabaseUnavailable, QueryRejected, ReadOnlyDatabase, SQLiteDatabase, database_for_url

__all__ = ["create_app", "DATA_DIR", "DEMO_DATABASE"]

DATA_DIR = Path(__file__).parent / "data"
DEMO_DATABASE = DATA_DIR / "demo.sqlite"
RUNBOOKS = DATA_DIR / "runbooks"
# The tables every demo tool reads; readiness requires them all.
DEMO_TABLES = ("services", "deployments", "incidents")

logger = logging.getLogger("mcpserve.demo")

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


class QueryOutput(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int = Field(description="Rows returned (at most the row cap)")
    truncated: bool = Field(description="True when the query matched more rows than were returned")


class DocMatch(BaseModel):
    path: str
    title: str
    score: int
    snippet: str


class RollbackChoice(BaseModel):
    confirm: bool = Field(description="Proceed with this rollback plan?")
    reason: str = Field(default="", description="Why roll back (goes into the change record)")


class RollbackPlan(BaseModel):
    service: str
    status: Literal["planned", "declined", "cancelled", "nothing_to_roll_back"]
    from_version: str | None = None
    to_version: str | None = None
    steps: list[str] = []
    reason: str = ""


def _database(settings: Settings | None) -> ReadOnlyDatabase:
    if settings is None:
        return SQLiteDatabase(DEMO_DATABASE)
    return database_for_url(
        settings.database_url or str(DEMO_DATABASE),
        min_connections=settings.db_min_connections,
        max_connections=settings.db_max_connections,
        idle_timeout=settings.db_idle_timeout,
        statement_timeout=settings.db_statement_timeout,
    )


def _traced(database: ReadOnlyDatabase, settings: Settings | None) -> ReadOnlyDatabase:
    """With tracing on, every query is a span of the tool call that made it."""
    if settings is None or not settings.tracing_enabled:
        return database
    from .sql.traced import TracedDatabase  # noqa: PLC0415 - only when tracing

    return TracedDatabase(database, settings.database_url)


def create_app(settings: Settings | None = None) -> MCPServer:
    """Build the demo server; ``settings`` chooses the database and runbook folder."""
    untraced = _database(settings)
    database = _traced(untraced, settings)
    docs = DocsLibrary(settings.docs_dir if settings and settings.docs_dir else RUNBOOKS)
    app = MCPServer(
        "mcpserve-demo",
        instructions=(
            "Operations assistant over the company's services, deployments, incidents and runbooks. "
            "Use query_database for ad-hoc questions (read-only SQL), get_deployment_status for one "
            "service, search_docs/read_doc for runbooks."
        ),
    )
    _register_lifecycle(app, database)
    _register_database_tools(app, database, _describe_schema(untraced))
    _register_docs(app, docs)
    _register_rollback(app, database)
    _register_incident_prompt(app, database)
    return app


def _register_lifecycle(app: MCPServer, database: ReadOnlyDatabase) -> None:
    """Open the database before serving and close it after; readiness asks for the demo's tables.

    A database that is down at start does not stop the server: it starts not ready, the readiness
    check keeps trying, and the pool opens once the database answers (what an orchestrator expects).
    """

    async def open_database() -> None:
        try:
            await database.open()
        except DatabaseUnavailable as exc:
            logger.warning("database unavailable at startup, serving not ready until it answers: %s", exc)

    async def demo_tables_reachable() -> None:
        # More than SELECT 1: a search_path naming a missing schema connects fine, yet every tool fails.
        reachable = await database.tables()  # one catalogue query per probe, not one per table
        missing = [table for table in DEMO_TABLES if table not in reachable]
        if missing:
            raise DatabaseUnavailable(
                f"the demo tables {', '.join(missing)} are not reachable; check the database and the "
                "schema (search_path) that MCPSERVE_DATABASE_URL names"
            )

    app.on_startup(open_database)
    app.on_shutdown(database.aclose)
    app.add_readiness_check("database", demo_tables_reachable)


def _describe_schema(database: ReadOnlyDatabase) -> str:
    """The tables for the tool description; a server's schema is only known once it is reachable."""
    if isinstance(database, SQLiteDatabase):
        tables = database.tables_now()
        return "; ".join(f"{table}({', '.join(columns)})" for table, columns in tables.items())
    return (
        "list them with SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    )


def _register_database_tools(app: MCPServer, database: ReadOnlyDatabase, schema: str) -> None:

    @app.tool(
        annotations=READ_ONLY,
        description=f"Run one read-only SQL SELECT ({database.dialect}). Tables: {schema}",
    )
    async def query_database(sql: str) -> QueryOutput:
        """Run one read-only SQL query.

        Args:
            sql: A single SELECT statement.
        """
        try:
            result = await database.query(sql)
        except QueryRejected as exc:
            raise ToolError(str(exc)) from None
        return QueryOutput(
            columns=result.columns, rows=result.rows, row_count=result.row_count, truncated=result.truncated
        )

    @app.tool(annotations=READ_ONLY)
    async def get_deployment_status(service: str) -> dict[str, Any]:
        """Deployment state of one service: latest deploy per environment, recent history, open incidents.

        Args:
            service: Service name, e.g. checkout-api.
        """
        try:
            return await deployment_status(database, service)
        except (UnknownService, ValueError, QueryRejected) as exc:
            raise ToolError(str(exc)) from None


def _register_docs(app: MCPServer, docs: DocsLibrary) -> None:
    @app.tool(annotations=READ_ONLY)
    def search_docs(query: str, limit: int = Field(5, ge=1, le=20)) -> list[DocMatch]:
        """Search the runbooks; every word must appear. Returns paths for read_doc.

        Args:
            query: Words to look for, e.g. "redis memory".
            limit: Maximum number of matches.
        """
        try:
            hits = docs.search(query, limit)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        return [DocMatch(path=h.path, title=h.title, score=h.score, snippet=h.snippet) for h in hits]

    @app.tool(annotations=READ_ONLY)
    def read_doc(path: str) -> str:
        """Read one runbook by the path search_docs returned.

        Args:
            path: Runbook path, e.g. deploy-rollback.md.
        """
        try:
            return docs.read(path)
        except DocNotFound as exc:
            raise ToolError(str(exc)) from None

    for info in docs.list():
        _register_runbook(app, docs, info.path, info.title)


def _register_rollback(app: MCPServer, database: ReadOnlyDatabase) -> None:
    @app.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def plan_rollback(service: str, ctx: Context) -> RollbackPlan:
        """Plan a production rollback to the previous successful version, after the user confirms.

        Args:
            service: Service name, e.g. payments.
        """
        try:
            status = await deployment_status(database, service)
        except (UnknownService, ValueError, QueryRejected) as exc:
            raise ToolError(str(exc)) from None
        production = status["environments"].get("production") or {}
        current, previous = production.get("running_version"), production.get("previous_version")
        if not current or not previous:
            return RollbackPlan(service=service, status="nothing_to_roll_back")
        answer = await ctx.elicit(
            f"Roll {service} back from {current} to {previous} in production?", RollbackChoice
        )
        if answer.action != "accept" or answer.data is None or not answer.data.confirm:
            outcome: Literal["declined", "cancelled"] = (
                "cancelled" if answer.action == "cancel" else "declined"
            )
            return RollbackPlan(service=service, status=outcome, from_version=current, to_version=previous)
        steps = [
            f"Announce the rollback of {service} in the incident channel",
            f"Deploy {previous} to production with the standard pipeline",
            "Watch error rate and p99 latency for 15 minutes (see high-latency-triage.md)",
            "Record the rollback and its reason on the incident",
        ]
        return RollbackPlan(
            service=service,
            status="planned",
            from_version=current,
            to_version=previous,
            steps=steps,
            reason=answer.data.reason,
        )


def _register_incident_prompt(app: MCPServer, database: ReadOnlyDatabase) -> None:
    @app.prompt(title="Summarise an incident")
    async def summarize_incident(incident_id: str) -> str:
        """Summarise one incident for a status update: impact, timeline, cause, follow-ups.

        Args:
            incident_id: Incident number from the incidents table.
        """
        if not incident_id.isdigit():
            raise InvalidParams("incident_id must be a number")
        try:
            rows = await database.fetch("SELECT * FROM incidents WHERE id = ?", (int(incident_id),))
        except DatabaseUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from None
        if not rows:
            raise InvalidParams(f"No incident with id {incident_id}")
        details = "\n".join(f"- {key}: {value}" for key, value in rows[0].items())
        return (
            "Write a short incident summary for a status update: impact, timeline, root cause "
            f"(if known) and follow-ups. Use the runbook if one is named.\n\nIncident record:\n{details}"
        )

    @app.completion()
    async def complete(ref: Any, argument: CompletionArgument, context: Any) -> Completion:
        if isinstance(ref, PromptReference) and argument.name == "incident_id":
            sql = "SELECT id FROM incidents ORDER BY status = 'resolved', opened_at DESC"
            rows = await database.fetch(sql)
            values = [str(r["id"]) for r in rows if str(r["id"]).startswith(argument.value)]
            return Completion(values)
        return Completion([])


def _register_runbook(app: MCPServer, docs: DocsLibrary, path: str, title: str) -> None:
    @app.resource(f"runbook://{path}", name=path, title=title, mime_type="text/markdown")
    def runbook() -> str:
        return docs.read(path)
