"""A server whose tool starts a span of its own and reports the trace context it would send."""

from __future__ import annotations

from mcpserve import MCPServer
from mcpserve.observability.tracing import inject_meta, tracer

app = MCPServer("child-span")


@app.tool()
async def child() -> str:
    """Start a child span (its sampler decides on the request's span), then return the
    ``traceparent`` a request sent upstream from here would carry."""
    with tracer("tests.child").start_as_current_span("child"):
        pass
    return str(inject_meta()["traceparent"])
