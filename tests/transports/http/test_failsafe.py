"""No exception escapes the endpoint: faults become -32603 with an id, refusals keep their status."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mcpserve import MCPServer
from mcpserve.errors import ServiceUnavailable
from mcpserve.server.dispatch import Dispatcher
from mcpserve.store.memory import MemoryEventStore, MemorySessionStore
from mcpserve.transports.http.endpoint import McpEndpoint
from mcpserve.transports.http.hostguard import HostGuard
from tests.support.asgi import request, rpc

pytestmark = pytest.mark.anyio

LEGACY = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


class BrokenSessions(MemorySessionStore):
    """A session store whose reads fail the way a lost backend connection would."""

    def __init__(self, failure: Exception) -> None:
        super().__init__(idle_timeout=60, max_sessions=10)
        self.failure = failure

    async def load(self, session_id: str) -> Any:
        raise self.failure


def endpoint(failure: Exception) -> McpEndpoint:
    sessions = BrokenSessions(failure)
    return McpEndpoint(
        Dispatcher(MCPServer("failsafe")),
        sessions=sessions,
        events=MemoryEventStore(sessions),
        guard=HostGuard([], [], []),
    )


async def test_an_unexpected_fault_becomes_500_with_an_error_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "mcpserve")
    app = endpoint(ConnectionResetError("redis://:s3cret@10.0.0.5 reset"))
    headers = {**LEGACY, "mcp-session-id": "abc"}
    reply = await request(app, "POST", headers=headers, body=rpc("tools/list"))
    assert reply.status == 500
    error = reply.json()["error"]
    assert error["code"] == -32603
    assert "s3cret" not in reply.body.decode() and "ConnectionResetError" not in reply.body.decode()
    assert any(error["data"]["errorId"] in r.getMessage() and r.exc_info for r in caplog.records)


async def test_a_refusal_from_a_store_keeps_its_status_and_retry_after() -> None:
    app = endpoint(ServiceUnavailable("Session store unavailable", retry_after=2.5))
    headers = {**LEGACY, "mcp-session-id": "abc"}
    reply = await request(app, "POST", headers=headers, body=rpc("tools/list"))
    assert reply.status == 503
    assert reply.headers["retry-after"] == "3"
    assert reply.json()["error"] == {"code": -31000, "message": "Session store unavailable"}


async def test_a_fault_after_the_response_started_ends_the_response() -> None:
    app = endpoint(RuntimeError("boom"))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def half_then_fail(scope: dict[str, Any], headers: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("mid-stream fault")

    app._serve = half_then_fail  # type: ignore[method-assign]
    await app({"type": "http", "method": "GET", "headers": []}, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body", "http.response.body"]
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_cancellation_naming_no_valid_request_id_is_ignored() -> None:
    """Found by the fuzz: an unhashable requestId used to raise inside the session lookup."""
    from mcpserve.config import load_settings  # noqa: PLC0415
    from mcpserve.runtime import build_http_app  # noqa: PLC0415

    app = build_http_app(MCPServer("cancel"), load_settings({"auth": "none"}))
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    reply = await request(app, "POST", headers=LEGACY, body=rpc("initialize", params))
    headers = {
        **LEGACY,
        "mcp-session-id": reply.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-11-25",
    }
    request_ids: list[object] = [[[]], {"a": 1}, None, 1.5]
    for request_id in request_ids:
        note = rpc("notifications/cancelled", {"requestId": request_id}, request_id=None)
        assert (await request(app, "POST", headers=headers, body=note)).status == 202
