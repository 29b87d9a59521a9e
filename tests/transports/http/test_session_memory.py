"""Expired 2025-era sessions give their memory back on a timer, in a real server process.

Three rounds of 600 sessions, each leaving resumable events and some an open GET stream, are
abandoned to expire. Nothing asks the server anything meanwhile (a scrape would sweep too): the
RSS must come back within 10 MB of the start by the sweep alone, every GET stream must end
within the sweep interval after its session expires, and the server must then report 0 live
sessions.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from tests.support.polling import eventually
from tests.transports.http.test_connection_limits import Server, serving

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

APP = Path(__file__).with_name("chatty_app.py")
MiB = 1024 * 1024
IDLE, SWEEP = 6.0, 0.5  # an idle timeout a loaded machine cannot stall through mid-session
ROUNDS, SESSIONS, STREAMS, WORKERS = 3, 600, 20, 12
VERSION = "2025-11-25"
KEY = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE"  # 32 bytes, base64url: a test key only
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def rpc(method: str, params: dict[str, Any], request_id: int | None = 1) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if request_id is not None:
        message["id"] = request_id
    return orjson.dumps(message)


async def session_with_events(client: httpx.AsyncClient) -> str:
    init = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    reply = await client.post("/mcp", content=rpc("initialize", init), headers=HEADERS)
    assert reply.status_code == 200, reply.text
    session_id = reply.headers["mcp-session-id"]
    headers = {**HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": VERSION}
    note = await client.post("/mcp", content=rpc("notifications/initialized", {}, None), headers=headers)
    assert note.status_code == 202
    call = {"name": "chatter", "arguments": {"count": 8, "size": 2048}, "_meta": {"progressToken": 1}}
    reply = await client.post("/mcp", content=rpc("tools/call", call, 2), headers=headers)
    assert reply.status_code == 200 and reply.text.count("\nid: ") >= 9, reply.text[:300]  # events kept
    return session_id


async def stream_until_it_ends(client: httpx.AsyncClient, session_id: str, lasted: list[float]) -> None:
    """Hold a GET stream; record how long after the session's last activity it ended.

    That activity is the GET itself (it restarts the idle clock), so the time runs from its
    response head, not from when this task asked for it: under load, the request can wait a
    second or more in this client (12 busy workers share its loop) before the server sees it.
    """
    headers = {"accept": "text/event-stream", "mcp-session-id": session_id, "mcp-protocol-version": VERSION}
    async with client.stream("GET", "/mcp", headers=headers) as reply:
        opened = time.monotonic()
        assert reply.status_code == 200
        async for _ in reply.aiter_bytes():
            pass
    lasted.append(time.monotonic() - opened)


async def one_round(server: Server, lasted: list[float]) -> None:
    limits = httpx.Limits(max_connections=WORKERS + STREAMS)
    timeout = httpx.Timeout(30, read=IDLE + SWEEP + 30)
    async with (
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", limits=limits, timeout=timeout
        ) as client,
        anyio.create_task_group() as group,
    ):
        remaining = iter(range(SESSIONS))

        async def worker() -> None:
            for n in remaining:
                session_id = await session_with_events(client)
                if n % (SESSIONS // STREAMS) == 0:
                    group.start_soon(stream_until_it_ends, client, session_id, lasted)

        for _ in range(WORKERS):
            group.start_soon(worker)


@pytest.mark.parametrize("state", ["memory", "redis"])
async def test_expired_sessions_release_their_events_and_streams(
    tmp_path: Path, state: str, request: pytest.FixtureRequest
) -> None:
    shared = {}
    if state == "redis":  # the replica keeps only its read cache; Redis expires the rest by TTL
        shared = {
            "MCPSERVE_REDIS_URL": request.getfixturevalue("redis_url"),
            "MCPSERVE_REQUEST_STATE_KEYS": KEY,
            "MCPSERVE_STATE_PREFIX": f"t-{uuid.uuid4().hex}:",
        }
    env = {
        **shared,
        "MCPSERVE_SESSION_IDLE_TIMEOUT": str(IDLE),
        "MCPSERVE_SESSION_SWEEP_INTERVAL": str(SWEEP),
        "MCPSERVE_MAX_SESSIONS_PER_PRINCIPAL": str(SESSIONS * ROUNDS),
    }
    with serving(tmp_path, APP, **env) as server:
        lasted: list[float] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            await session_with_events(client)  # code paths warmed before the baseline
        start = server.memory("VmRSS")
        for _ in range(ROUNDS):
            with anyio.fail_after(300):
                await one_round(server, lasted)
        # Every GET stream ended by itself, within the sweep interval after its session expired
        # (timed from its response head, the session's last activity; slack for a loaded machine).
        assert len(lasted) == ROUNDS * STREAMS
        assert max(lasted) <= IDLE + SWEEP + 3, sorted(lasted)[-5:]
        # Memory comes back without anything asking the server (no scrape, no request).
        grown = [0]

        def returned() -> bool:
            grown[0] = server.memory("VmRSS") - start
            return grown[0] < 10 * MiB

        with contextlib.suppress(TimeoutError):
            await eventually(returned, within=IDLE + 10 * SWEEP + 10)
        assert returned(), f"RSS {grown[0] / MiB:.1f} MiB above the start"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:

            async def none_live() -> bool:  # Redis counts an expired session up to idle / 2 more
                metrics = (await client.get("/metrics")).text
                return "\nmcp_active_sessions 0.0\n" in metrics

            await eventually(none_live, within=IDLE + 10)
