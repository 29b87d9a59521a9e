"""Fuzz the real MCP endpoint in-process with hypothesis: bodies, JSON-RPC messages and headers.

Properties, for every generated request: no exception escapes the ASGI app, exactly one response
is started and completed, the status is a documented one (no 5xx except 503), the body is empty
(202, DELETE), one JSON-RPC response object, or SSE events each holding a JSON-RPC message; and a
good request on the same app still succeeds afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from tests.fuzz.app import make_server
from tests.fuzz.strategies import (
    DOCUMENTED_STATUSES,
    VALID_SESSION,
    bodies,
    check_jsonrpc,
    fuzz,
    header_edits,
    header_sets,
    headers_for,
    messages,
)
from tests.support.asgi import META, MODERN_HEADERS

pytestmark = pytest.mark.anyio


@dataclass
class Target:
    """The one app every example hits, and a 2025-era session on it (re-made if fuzz deletes it)."""

    app: HttpApp
    session_id: str | None = None
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def target() -> Target:
    # Rate limits stay on (their code runs on every example) with budgets the fuzz cannot exhaust.
    budgets = {"rate_limit_per_minute": 10**9, "rate_limit_per_hour": 10**9}
    return Target(
        build_http_app(make_server(), load_settings({"auth": "none", "max_body_bytes": 4096, **budgets}))
    )


@dataclass
class Sent:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    starts: int = 0
    complete: bool = False


async def drive(app: HttpApp, method: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Sent:
    """One request through the ASGI app; the client disconnects as soon as the body is read."""
    sent = Sent()
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        assert not sent.complete, "message after the response completed"
        if message["type"] == "http.response.start":
            sent.starts += 1
            sent.status = message["status"]
            sent.headers = dict(message["headers"])
        else:
            assert sent.starts == 1, "body before the response started"
            sent.body += message.get("body", b"")
            sent.complete = not message.get("more_body", False)

    scope = {"type": "http", "method": method, "path": "/mcp", "headers": headers, "client": ("127.0.0.1", 5)}
    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent


def check_reply(sent: Sent, method: str) -> None:
    assert sent.starts == 1 and sent.complete
    assert sent.status in DOCUMENTED_STATUSES, (sent.status, sent.body[:300])
    content_type = sent.headers.get(b"content-type", b"")
    if not sent.body:
        assert sent.status == 202 or (sent.status == 200 and method in ("DELETE", "GET")), sent
    elif content_type == b"application/json":
        reply = orjson.loads(sent.body)
        check_jsonrpc(reply)
        assert "error" not in reply or "Traceback" not in reply["error"]["message"]
    else:
        assert content_type == b"text/event-stream", sent.headers
        for block in sent.body.decode().split("\n\n"):
            data = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
            if data and data[0]:
                check_jsonrpc(orjson.loads(data[0]))


async def ensure_session(target: Target) -> str:
    if target.session_id is None:
        params = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "f", "version": "0"},
        }
        body = orjson.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params})
        sent = await drive(target.app, "POST", _headers(MODERN_HEADERS, mcp_protocol_version=None), body)
        target.session_id = sent.headers[b"mcp-session-id"].decode()
    return target.session_id


def _headers(base: dict[str, str], **changes: str | None) -> list[tuple[bytes, bytes]]:
    merged: dict[str, str | None] = {"host": "127.0.0.1:8000", **base}
    merged.update({k.replace("_", "-"): v for k, v in changes.items()})
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in merged.items() if v is not None]


async def assert_still_serving(target: Target) -> None:
    body = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": "probe",
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "ok"}, "_meta": META},
        }
    )
    headers = _headers(MODERN_HEADERS, mcp_method="tools/call", mcp_name="echo")
    sent = await drive(target.app, "POST", headers, body)
    assert sent.status == 200
    assert orjson.loads(sent.body)["result"]["content"] == [{"type": "text", "text": "ok"}]


async def fuzz_once(target: Target, method: str, headers: dict[str, str | None], body: bytes) -> None:
    if headers.get("mcp-session-id") == VALID_SESSION:
        headers["mcp-session-id"] = await ensure_session(target)
    # Header values travel as bytes; non-latin-1 text goes as UTF-8, as clients send it.
    raw = [(k.encode(), v.encode("utf-8", "surrogatepass")) for k, v in headers.items() if v is not None]
    sent = await drive(target.app, method, raw, body)
    check_reply(sent, method)
    if method == "DELETE" and sent.status == 200:
        target.session_id = None
    target.requests += 1
    target.statuses[sent.status] = target.statuses.get(sent.status, 0) + 1
    await assert_still_serving(target)


@fuzz(2500)
@given(method=st.sampled_from(["POST"] * 6 + ["GET", "DELETE", "PUT"]), headers=header_sets, body=bodies)
async def test_any_request_gets_a_documented_well_formed_answer(
    target: Target, method: str, headers: dict[str, str | None], body: bytes
) -> None:
    await fuzz_once(target, method, headers, body)


@fuzz(3500)
@given(
    message=messages,
    era=st.sampled_from(["modern", "modern", "legacy"]),
    edits=header_edits,
    ascii_only=st.booleans(),
)
async def test_near_valid_messages_past_the_http_checks_get_a_documented_answer(
    target: Target, message: Any, era: str, edits: list[tuple[str, str | None]], ascii_only: bool
) -> None:
    """Headers that agree with the body (but for one edit): the examples reach the dispatcher."""
    headers = headers_for(message, era)
    headers.update(edits)
    body = json.dumps(message, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    await fuzz_once(target, "POST", headers, body)


def test_the_fuzz_reached_the_dispatcher(target: Target) -> None:
    """Guard against a fuzz that only ever hits the first refusal: results and many statuses seen."""
    if target.requests == 0:
        pytest.skip("the fuzz tests above did not run in this session")
    assert target.requests >= 6000
    assert {200, 202, 400, 404, 406, 415, 421}.issubset(target.statuses), target.statuses
