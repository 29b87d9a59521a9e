"""State a client holds (a 2025-era session id, a requestState, an event id) is never a credential:
presented with another principal's token it fails exactly as if it did not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcpserve.transports.http.app import HttpApp
from tests.auth.app import DEPLOYER_KEY, READER_KEY, build_app
from tests.auth.support import bearer, call_tool
from tests.support.asgi import META, Reply, request, rpc
from tests.support.issuer import LocalIssuer

pytestmark = pytest.mark.anyio

LEGACY = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
ELICIT: dict[str, Any] = {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
def app(issuer: LocalIssuer, tmp_path: Path, calls: list[str]) -> HttpApp:
    return build_app(issuer, tmp_path, calls)


async def _initialize(app: HttpApp, token: str) -> str:
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    reply = await request(app, "POST", headers={**LEGACY, **bearer(token)}, body=rpc("initialize", params))
    assert reply.status == 200
    return reply.headers["mcp-session-id"]


async def _legacy(app: HttpApp, token: str, session: str, method: str, params: dict[str, Any]) -> Reply:
    headers = {**LEGACY, **bearer(token), "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    return await request(app, "POST", headers=headers, body=rpc(method, params, 7))


async def test_a_session_answers_another_principal_like_an_unknown_session(
    app: HttpApp, calls: list[str]
) -> None:
    session = await _initialize(app, READER_KEY)
    call = {"name": "whoami", "arguments": {}}
    foreign = await _legacy(app, DEPLOYER_KEY, session, "tools/call", call)
    unknown = await _legacy(app, DEPLOYER_KEY, "no-such-session", "tools/call", call)
    assert (foreign.status, foreign.json()) == (unknown.status, unknown.json())
    assert foreign.status == 404
    assert foreign.json()["error"]["message"] == "Session not found: initialize a new session"
    assert calls == []
    own = await _legacy(app, READER_KEY, session, "tools/call", call)
    assert own.json()["result"]["structuredContent"]["name"] == "reader"
    assert calls == ["whoami"]


async def test_get_resume_and_delete_of_another_principals_session_fail_like_unknown(app: HttpApp) -> None:
    session = await _initialize(app, READER_KEY)
    for method, extra in [("GET", {"last-event-id": "0"}), ("GET", {}), ("DELETE", {})]:
        headers = {"accept": "text/event-stream", **bearer(DEPLOYER_KEY), **extra}
        foreign = await request(app, method, headers={**headers, "mcp-session-id": session})
        unknown = await request(app, method, headers={**headers, "mcp-session-id": "no-such-session"})
        assert foreign.status == unknown.status == 404
        assert foreign.json() == unknown.json()
    # The foreign DELETE did not end it: its owner still uses it.
    still = await _legacy(app, READER_KEY, session, "ping", {})
    assert still.json()["result"] == {}


async def test_an_oauth_subject_is_not_the_api_key_principal_of_the_same_name(
    app: HttpApp, issuer: LocalIssuer
) -> None:
    session = await _initialize(app, READER_KEY)
    same_name = await _legacy(app, issuer.mint(sub="reader"), session, "ping", {})
    assert same_name.status == 404


async def test_a_request_state_replayed_by_another_principal_fails_like_an_invalid_one(
    app: HttpApp, issuer: LocalIssuer, calls: list[str]
) -> None:
    alice, mallory = issuer.mint(sub="alice"), issuer.mint(sub="mallory")
    first = await call_tool(app, "confirm", alice, {"action": "drop"}, params={"_meta": _elicit_meta()})
    result = first.json()["result"]
    assert result["resultType"] == "input_required"
    (key,) = result["inputRequests"]
    answered = {"inputResponses": {key: {"action": "accept", "content": {"ok": True}}}}

    async def retry(token: str, state: str) -> Reply:
        params = {"_meta": _elicit_meta(), "requestState": state, **answered}
        return await call_tool(app, "confirm", token, {"action": "drop"}, params=params)

    replayed = await retry(mallory, result["requestState"])
    forged = await retry(mallory, "not-a-sealed-state")
    assert replayed.status == forged.status == 400
    assert replayed.json() == forged.json()
    assert replayed.json()["error"]["code"] == -32602
    assert calls == []
    own = await retry(alice, result["requestState"])
    assert own.json()["result"]["content"][0]["text"] == "drop: accept"
    assert calls == ["confirm:accept"]


def _elicit_meta() -> dict[str, Any]:
    return {**META, **ELICIT}


async def test_a_stream_is_resumable_only_by_its_principal(app: HttpApp) -> None:
    session = await _initialize(app, READER_KEY)
    params = {"name": "progress", "arguments": {}, "_meta": {"progressToken": "p"}}
    streamed = await _legacy(app, READER_KEY, session, "tools/call", params)
    assert streamed.headers["content-type"] == "text/event-stream"
    event_ids = [line[4:] for line in streamed.body.decode().splitlines() if line.startswith("id: ")]
    assert event_ids
    resume = {"accept": "text/event-stream", "last-event-id": event_ids[0]}
    own = await request(app, "GET", headers={**resume, **bearer(READER_KEY), "mcp-session-id": session})
    assert own.status == 200
    assert own.events()[-1]["result"]["content"][0]["text"] == "done"
    foreign = await request(app, "GET", headers={**resume, **bearer(DEPLOYER_KEY), "mcp-session-id": session})
    unknown = await request(app, "GET", headers={**resume, **bearer(DEPLOYER_KEY), "mcp-session-id": "nope"})
    assert foreign.status == unknown.status == 404
    assert foreign.json() == unknown.json()
    assert foreign.body.find(b"done") == -1
