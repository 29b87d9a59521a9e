"""Three replicas behind nginx round-robin on one Redis act as one server while they restart.

The official Python client (2025-era sessions and 2026-07-28) and the TypeScript SDK v1 client
call tools continuously, with an elicitation every tenth call (its answer lands on whichever
replica the proxy picks), while (a) every replica is restarted in turn with SIGTERM, (b) one is
killed with SIGKILL and started again, and (c) a list change made on replica 3 reaches a GET
stream and a ``subscriptions/listen`` stream held on replica 1. Prints requests made and failed,
and sessions lost and resumed, per phase.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import ElicitResult

from tests.cluster.cluster import cluster
from tests.support.asgi import META, MODERN_HEADERS
from tests.support.replica import Replica
from tests.support.servers import node_tool

pytestmark = pytest.mark.slow

JS = Path(__file__).with_name("js")


@dataclass
class Tally:
    """What one client saw, in total and per phase."""

    name: str
    made: int = 0
    failed: int = 0
    sessions: int = 0
    lost: int = 0
    elicitations: int = 0
    errors: list[str] = field(default_factory=list)
    by_phase: dict[str, tuple[int, int]] = field(default_factory=dict)

    def fail(self, error: BaseException | str) -> None:
        self.failed += 1
        if len(self.errors) < 8:
            self.errors.append(f"{type(error).__name__}: {error}"[:300])


async def _accept(context: Any, params: Any) -> ElicitResult:
    return ElicitResult(action="accept", content={"ok": True})


def _session_gone(error: BaseException) -> bool:
    text = str(error).lower()
    return "session" in text and ("not found" in text or "terminated" in text or "404" in text)


async def _python_client(url: str, mode: str, tally: Tally, stop: anyio.Event) -> None:
    """Continuous calls; a new session only if the server lost the old one (counted as lost)."""
    while not stop.is_set():
        try:
            async with (
                create_mcp_http_client() as http,
                Client(
                    streamable_http_client(url, http_client=http),
                    mode=mode,
                    elicitation_callback=_accept,
                    read_timeout_seconds=30,
                ) as client,
            ):
                tally.sessions += 1
                while not stop.is_set():
                    tally.made += 1
                    number = tally.made
                    elicit = number % 10 == 0
                    try:
                        if elicit:
                            result = await client.call_tool("confirm", {"action": f"a{number}"})
                            expected = f"a{number}: accept"
                        else:
                            result = await client.call_tool("echo", {"text": f"t{number}"})
                            expected = f"t{number}"
                        text = getattr(result.content[0], "text", None) if result.content else None
                        if result.is_error or text != expected:
                            tally.fail(f"unexpected result {result!r}"[:300])
                        elif elicit:
                            tally.elicitations += 1
                    except Exception as exc:
                        tally.fail(exc)
                        if _session_gone(exc):
                            tally.lost += 1
                            break
                    await anyio.sleep(0.02)  # a steady small load, not synchronisation
        except Exception as exc:  # the session could not be opened, or its transport failed
            tally.made += 1
            tally.fail(exc)
            await anyio.sleep(0.2)


def _node_load(url: str, stop_file: Path) -> subprocess.Popen[bytes] | None:
    node = node_tool("node")
    if not node.exists():
        return None
    return subprocess.Popen(
        [str(node), str(JS / "load_v1.mjs"), url, str(stop_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _listen_body() -> bytes:
    params = {"notifications": {"toolsListChanged": True}, "_meta": META}
    return json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": params}
    ).encode()


async def _announce(replica: Replica) -> None:
    """Call ``announce`` on this replica directly (2026-07-28): a list change made there."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "announce", "arguments": {}, "_meta": META},
    }
    headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": "announce"}
    async with httpx.AsyncClient(timeout=10) as http:
        reply = await http.post(replica.url, json=body, headers=headers)
        assert reply.status_code == 200, reply.text


async def _change_reaches_replica_1(replicas: list[Replica]) -> dict[str, bool]:
    """(c): a GET stream (2025 era) and a listen stream (2026-07-28) on replica 1 each receive a
    tool-list change announced on replica 3."""
    first, third = replicas[0], replicas[2]
    heard = {"get": False, "listen": False}
    get_heard, listen_heard = anyio.Event(), anyio.Event()

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            heard["get"] = True
            get_heard.set()

    async def listen_stream() -> None:
        headers = {**MODERN_HEADERS, "mcp-method": "subscriptions/listen"}
        async with (
            httpx.AsyncClient(timeout=30) as http,
            http.stream("POST", first.url, content=_listen_body(), headers=headers) as reply,
        ):
            async for line in reply.aiter_lines():
                if "notifications/tools/list_changed" in line:
                    heard["listen"] = True
                    listen_heard.set()
                    return

    async with (
        create_mcp_http_client() as http,
        Client(
            streamable_http_client(first.url, http_client=http), mode="legacy", message_handler=on_message
        ),
        anyio.create_task_group() as group,
    ):
        group.start_soon(listen_stream)
        with anyio.move_on_after(20):
            # Announce until both heard it: the streams open in the background.
            while not (get_heard.is_set() and listen_heard.is_set()):
                await _announce(third)
                with anyio.move_on_after(0.5):
                    await get_heard.wait()
                    await listen_heard.wait()
        group.cancel_scope.cancel()
    return heard


def _wait_for_calls(tallies: list[Tally], more: int, within: float = 60) -> None:
    """Until the clients together made ``more`` calls (the cluster serves again)."""
    before = sum(t.made - t.failed for t in tallies)
    end = time.monotonic() + within
    while sum(t.made - t.failed for t in tallies) < before + more:
        if time.monotonic() > end:
            raise TimeoutError("the clients made no progress")
        time.sleep(0.05)  # polling the clients' progress, not synchronisation


@pytest.mark.parametrize("balancing", ["round-robin", "session-hash"])
def test_three_replicas_behind_nginx_survive_restarts_and_kills(tmp_path: Path, balancing: str) -> None:
    anyio.run(_scenario, tmp_path, balancing)


async def _scenario(tmp_path: Path, balancing: str) -> None:
    tallies = [Tally("python legacy"), Tally("python 2026-07-28")]
    phases: dict[str, dict[str, tuple[int, int]]] = {}
    windows: dict[str, tuple[float, float]] = {}  # wall-clock span of each phase, for the JS client
    stop = anyio.Event()
    stop_file = tmp_path / "stop"
    with cluster(tmp_path, balancing) as (replicas, url):
        node = _node_load(url, stop_file)

        async def phase(name: str, action: Callable[[], None]) -> None:
            before = {t.name: (t.made, t.failed) for t in tallies}
            started = time.time()
            await anyio.to_thread.run_sync(action)
            windows[name] = (started, time.time())
            phases[name] = {
                t.name: (t.made - before[t.name][0], t.failed - before[t.name][1]) for t in tallies
            }

        def rolling_restart() -> None:
            for replica in replicas:
                assert replica.stop() == 0
                replica.start()
                _wait_for_calls(tallies, 30)

        def kill_one() -> None:
            replicas[1].kill()
            replicas[1].start()
            _wait_for_calls(tallies, 30)

        async with anyio.create_task_group() as group:
            group.start_soon(_python_client, url, "legacy", tallies[0], stop)
            group.start_soon(_python_client, url, "2026-07-28", tallies[1], stop)
            await phase("warm-up", lambda: _wait_for_calls(tallies, 60))
            await phase("(a) rolling SIGTERM restart", rolling_restart)
            await phase("(b) SIGKILL and restart", kill_one)
            started = time.time()
            heard = await _change_reaches_replica_1(replicas)
            windows["(c) list change"] = (started, time.time())
            stop.set()
        stop_file.touch()
        proxy_errors = [
            line for line in (tmp_path / "error.log").read_text().splitlines() if "[error]" in line
        ]
        js: dict[str, Any] = {}
        if node is not None:
            out, _ = node.communicate(timeout=60)
            js = json.loads(out.decode().strip().splitlines()[-1])

    print(f"\ncluster test: 3 replicas, nginx {balancing}, one Redis")
    for tally in tallies:
        print(
            f"  {tally.name}: {tally.made} requests, {tally.failed} failed, "
            f"{tally.elicitations} elicitations, {tally.sessions} sessions, {tally.lost} lost, "
            f"{tally.sessions - tally.lost} resumed on other replicas through every restart"
        )
        for name, per_client in phases.items():
            made, failed = per_client[tally.name]
            print(f"    {name}: {made} made, {failed} failed")
        for error in tally.errors:
            print(f"    error: {error}")
    js_failed = {
        name: sum(start <= at <= end for at in js.get("failedAt", []))
        for name, (start, end) in windows.items()
    }
    if js:
        print(f"    failed per phase: {js_failed}; failed at {js.get('failedAt')}, phases {windows}")
        print(
            f"  typescript v1 (legacy): {js.get('made')} requests, {js.get('failed')} failed, "
            f"{js.get('elicitations')} elicitations, GET statuses {js.get('getStatuses')}, "
            f"errors {js.get('errors')}"
        )
    print(f"  list change on replica 3 heard on replica 1: {heard}")
    for line in proxy_errors:
        print(f"  nginx: {line[:300]}")

    assert heard == {"get": True, "listen": True}
    for tally in tallies:
        assert tally.lost == 0, tally.errors
        assert phases["(a) rolling SIGTERM restart"][tally.name][1] == 0, tally.errors
        # (b): only calls in flight on the killed replica may fail (one per client at a time).
        assert phases["(b) SIGKILL and restart"][tally.name][1] <= 1, tally.errors
        assert tally.made - tally.failed >= 100
        assert tally.elicitations >= 5  # (d): answered through whichever replica the proxy picked
    if node is not None:
        assert js["ok"], js
        assert js["made"] >= 50 and js["elicitations"] >= 3
        assert js_failed["(a) rolling SIGTERM restart"] == 0, js
        assert js["failed"] <= 1, js  # at most the call in flight on the killed replica
