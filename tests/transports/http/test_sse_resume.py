"""2025-era SSE polling (SEP-1699): a request's stream closes mid-call and resumes on a GET.

``Context.close_sse_stream`` ends the POST response while the tool keeps running; a GET with
``Last-Event-ID`` then receives what was sent meanwhile and the rest of the stream live.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from mcpserve import Context, MCPServer
from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from tests.support.asgi import META, MODERN_HEADERS, Reply, open_request, request, rpc

pytestmark = pytest.mark.anyio

LEGACY = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def make_app(release: anyio.Event) -> HttpApp:
    """Tools that wait for ``release`` (set by the test) before they finish."""
    server = MCPServer("resume-test")

    @server.tool()
    async def poll_me(ctx: Context) -> str:
        """Closes its stream, sends progress, waits for the test, then answers."""
        await ctx.close_sse_stream()
        await ctx.report_progress(1, 2)
        await release.wait()
        await ctx.report_progress(2, 2)
        return "finished"

    @server.tool()
    async def keep_open(ctx: Context) -> str:
        """Sends progress on its own stream and waits for the test."""
        await ctx.report_progress(1, 2)
        await release.wait()
        return "finished"

    @server.tool()
    async def close_quickly(ctx: Context) -> str:
        """Closes its stream and answers at once."""
        await ctx.close_sse_stream()
        await ctx.close_sse_stream()  # closing twice changes nothing
        return "quick"

    return build_http_app(server, load_settings({"auth": "none"}))


async def initialize(app: HttpApp) -> dict[str, str]:
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    reply = await request(app, "POST", headers=LEGACY, body=rpc("initialize", params))
    session = {
        **LEGACY,
        "mcp-session-id": reply.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-11-25",
    }
    note = rpc("notifications/initialized", request_id=None)
    assert (await request(app, "POST", headers=session, body=note)).status == 202
    return session


def call(name: str, request_id: int) -> bytes:
    return rpc("tools/call", {"name": name, "arguments": {}, "_meta": {"progressToken": "p"}}, request_id)


def event_ids(reply: Reply) -> list[str]:
    return [line[4:] for line in reply.body.decode().split("\n") if line.startswith("id: ")]


def resume_headers(session: dict[str, str], last_event_id: str) -> dict[str, str]:
    return {**session, "accept": "text/event-stream", "last-event-id": last_event_id}


async def wait_for(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.wait_all_tasks_blocked()


async def test_closed_stream_resumes_live_on_get() -> None:
    release = anyio.Event()
    app = make_app(release)
    session = await initialize(app)
    async with open_request(app, "POST", headers=session, body=call("poll_me", 7)) as post:
        with anyio.fail_after(5):
            await post.done.wait()  # the tool closed the response; it is still running
        assert post.headers["content-type"] == "text/event-stream"
        assert b"retry: " in post.body
        assert post.events() == []  # only the priming event went out
        [priming] = event_ids(post)
        async with open_request(app, "GET", headers=resume_headers(session, priming)) as get:
            await wait_for(lambda: len(get.events()) == 1)  # progress sent while disconnected
            assert not get.done.is_set()
            release.set()
            with anyio.fail_after(5):
                await get.done.wait()
    assert get.status == 200
    assert get.headers["content-type"] == "text/event-stream"
    events = get.events()
    assert [e.get("params", {}).get("progress") for e in events[:2]] == [1, 2]
    assert events[-1]["id"] == 7
    assert events[-1]["result"]["content"][0]["text"] == "finished"


async def test_result_stored_while_disconnected_is_replayed() -> None:
    app = make_app(anyio.Event())
    session = await initialize(app)
    post = await request(app, "POST", headers=session, body=call("close_quickly", 8))
    assert post.events() == []
    [priming] = event_ids(post)
    get = await request(app, "GET", headers=resume_headers(session, priming))
    assert [e["id"] for e in get.events()] == [8]


async def test_dropped_resumption_can_resume_again() -> None:
    release = anyio.Event()
    app = make_app(release)
    session = await initialize(app)
    async with open_request(app, "POST", headers=session, body=call("poll_me", 9)) as post:
        with anyio.fail_after(5):
            await post.done.wait()
        [priming] = event_ids(post)
        async with open_request(app, "GET", headers=resume_headers(session, priming)) as first:
            await wait_for(lambda: len(first.events()) == 1)
        last_seen = event_ids(first)[-1]
        async with open_request(app, "GET", headers=resume_headers(session, last_seen)) as second:
            await wait_for(lambda: b"retry: " in second.body)
            release.set()
            with anyio.fail_after(5):
                await second.done.wait()
    events = second.events()
    assert [e.get("params", {}).get("progress") for e in events[:1]] == [2]
    assert events[-1]["id"] == 9


async def test_resuming_an_open_stream_moves_it_to_the_new_response() -> None:
    release = anyio.Event()
    app = make_app(release)
    session = await initialize(app)
    async with open_request(app, "POST", headers=session, body=call("keep_open", 10)) as post:
        await wait_for(lambda: len(post.events()) == 1)
        last_seen = event_ids(post)[-1]
        async with open_request(app, "GET", headers=resume_headers(session, last_seen)) as get:
            with anyio.fail_after(5):
                await post.done.wait()  # the old response ends when the stream moves
            release.set()
            with anyio.fail_after(5):
                await get.done.wait()
    assert [e.get("id") for e in post.events()] == [None]
    assert [e["id"] for e in get.events()] == [10]


async def test_modern_requests_ignore_close_sse_stream() -> None:
    app = make_app(anyio.Event())
    headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": "close_quickly"}
    body = rpc("tools/call", {"name": "close_quickly", "arguments": {}, "_meta": META}, 11)
    reply = await request(app, "POST", headers=headers, body=body)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["result"]["content"][0]["text"] == "quick"


async def test_a_call_stream_is_live_from_its_first_event_until_its_last() -> None:
    """Listed for a resumption while it streams, and gone once its answer is out."""
    release = anyio.Event()
    app = make_app(release)
    session = await initialize(app)
    live = app.endpoint.legacy.tables.live
    session_id = session["mcp-session-id"]
    async with open_request(app, "POST", headers=session, body=call("keep_open", 3)) as post:
        await wait_for(lambda: len(post.events()) == 1)  # its progress went out
        stream_id = event_ids(post)[0].rpartition("/")[0]
        assert live.get(session_id, stream_id) is not None
        release.set()
        with anyio.fail_after(5):
            await post.done.wait()
    assert post.events()[-1]["result"]["content"][0]["text"] == "finished"
    assert live.get(session_id, stream_id) is None
