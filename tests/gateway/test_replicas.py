"""Two gateway replicas on one private Redis act as one gateway for a 2026-07-28 call parked on an
upstream's question: the retry carrying the answer may land on either replica."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest

from mcpserve.principal import Principal
from mcpserve.protocol.sealing import KeyRing
from mcpserve.protocol.session import LegacySession
from mcpserve.server.app import MCPServer
from mcpserve.server.dispatch import Dispatcher
from mcpserve.store.redis_bus import RedisMessageBus
from mcpserve.store.redis_connection import STATE_RETRY, connect
from tests.gateway.support import app_upstream, gateway, upstream_of
from tests.server.support import ELICIT, RecordingOutbound, error_of, legacy, modern, result_of, text_of
from tests.support.redis_server import private_redis

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CONFIRM = {"name": "test__confirm", "arguments": {"question": "Go?"}}
YES = {"action": "accept", "content": {"ok": True}}
ALICE = Principal("alice")
Replica = tuple[MCPServer, Dispatcher, RedisMessageBus]


@asynccontextmanager
async def replicas(count: int = 2, upstream: dict[str, Any] | None = None) -> AsyncIterator[list[Replica]]:
    """``count`` gateways over their own children, one Redis bus each (as processes would have),
    sealing requestState with the keys they share."""
    with private_redis() as redis_server:
        prefix, ring = f"gw-{uuid.uuid4().hex[:8]}:", KeyRing.ephemeral()
        async with AsyncExitStack() as stack:
            found: list[Replica] = []
            for _ in range(count):
                client = connect(redis_server.url, retry=STATE_RETRY)
                stack.push_async_callback(client.aclose)
                bus = RedisMessageBus(client, prefix=prefix)
                stack.push_async_callback(bus.aclose)
                server, dispatcher = await stack.enter_async_context(
                    gateway(upstream or app_upstream(), bus=bus, keyring=ring)
                )
                found.append((server, dispatcher, bus))
            yield found


def _in_flight(server: MCPServer) -> int:
    return upstream_of(server, "test").pool.children["shared"].in_flight  # type: ignore[union-attr]


def _retry(first: Any, params: Any, answer: Any) -> Any:
    (key,) = first["inputRequests"]
    return {**params, "inputResponses": {key: answer}, "requestState": first["requestState"]}


async def test_the_answer_reaching_the_other_replica_resumes_the_waiting_call() -> None:
    async with replicas() as [(a_server, a, _), (b_server, b, _)]:
        first = result_of(await a.handle(modern("tools/call", CONFIRM, capabilities=ELICIT)))
        assert first["resultType"] == "input_required"
        assert _in_flight(a_server) == 1
        retry = modern("tools/call", _retry(first, CONFIRM, YES), request_id=2, capabilities=ELICIT)
        result = result_of(await b.handle(retry))
        # A second upstream call would have asked again: the answer went to the call waiting on A.
        assert (result["resultType"], text_of(result)) == ("complete", "accept:True")
        assert _in_flight(a_server) == 0
        assert _in_flight(b_server) == 0
        # The parked call is gone everywhere: the same retry again is refused, on either replica.
        for replica in (a, b):
            again = result_of(await replica.handle(modern("tools/call", _retry(first, CONFIRM, YES))))
            assert again["isError"] is True
            assert "call the tool again" in text_of(again)


async def test_progress_and_the_next_question_come_back_through_the_other_replica() -> None:
    params = {"name": "test__confirm_then_work", "arguments": {"question": "Go?"}}
    async with replicas(3) as [(_, a, _), (_, b, _), (_, c, _)]:
        first = result_of(await a.handle(modern("tools/call", params, capabilities=ELICIT)))
        outbound = RecordingOutbound()
        call = modern(
            "tools/call",
            _retry(first, params, YES),
            request_id=2,
            capabilities=ELICIT,
            progress_token="p",
            outbound=outbound,
        )
        result = result_of(await b.handle(call))
        assert text_of(result) == "worked:accept"
        assert [(p["progress"], p["total"]) for p in outbound.of("notifications/progress")] == [
            (1, 2),
            (2, 2),
        ]
        # A retry that answers nothing is refused on the holder and the call stays parked.
        second = result_of(await a.handle(modern("tools/call", CONFIRM, capabilities=ELICIT)))
        (key,) = second["inputRequests"]
        unanswered = {**CONFIRM, "requestState": second["requestState"]}
        error = error_of(await c.handle(modern("tools/call", unanswered, capabilities=ELICIT)))
        assert (error["code"], error["message"]) == (-32602, "inputResponses lacks an answer for " + key)
        done = result_of(
            await c.handle(modern("tools/call", _retry(second, CONFIRM, YES), capabilities=ELICIT))
        )
        assert text_of(done) == "accept:True"


async def test_a_retry_for_a_call_whose_replica_is_gone_is_a_clear_error_at_once() -> None:
    async with replicas() as [(a_server, a, a_bus), (_, b, _)]:
        first = result_of(await a.handle(modern("tools/call", CONFIRM, capabilities=ELICIT)))
        await a_bus.aclose()  # replica A's Redis connections end, as when it is killed
        started = time.monotonic()
        result = result_of(
            await b.handle(modern("tools/call", _retry(first, CONFIRM, YES), capabilities=ELICIT))
        )
        assert result["isError"] is True
        assert "replica holding it stopped" in text_of(result)
        assert time.monotonic() - started < 1.0
        assert _in_flight(a_server) == 1  # still parked on A: it expires there


@asynccontextmanager
async def working_on_a(a: Dispatcher, b: Dispatcher) -> AsyncIterator[tuple[anyio.CancelScope, list[Any]]]:
    """A call parked on A, its retry sent to B and resumed on A (its progress reached B)."""
    params = {"name": "test__confirm_then_work", "arguments": {"question": "Go?", "seconds": 30}}
    first = result_of(await a.handle(modern("tools/call", params, capabilities=ELICIT)))
    outbound = RecordingOutbound()
    retry = modern(
        "tools/call", _retry(first, params, YES), capabilities=ELICIT, progress_token="p", outbound=outbound
    )
    outcome: list[Any] = []

    async def run() -> None:
        outcome.append(result_of(await b.handle(retry)))

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        with anyio.fail_after(10):
            while not outbound.of("notifications/progress"):  # noqa: ASYNC110 - resumed on A
                await anyio.sleep(0.01)
        yield group.cancel_scope, outcome


async def test_a_replica_lost_while_it_runs_the_resumed_call_ends_the_retry_with_an_error() -> None:
    async with replicas() as [(_, a, a_bus), (_, b, _)]:
        async with working_on_a(a, b) as (_, outcome):
            lost = time.monotonic()
            await a_bus.aclose()
        assert outcome[0]["isError"] is True
        assert "the call was lost with it" in text_of(outcome[0])
        assert time.monotonic() - lost < 3.5  # one probe interval and the grace for a late reply


async def test_a_cancelled_retry_cancels_the_resumed_call_on_the_holder() -> None:
    async with replicas() as [(a_server, a, _), (_, b, _)]:
        async with working_on_a(a, b) as (scope, _):
            assert _in_flight(a_server) == 1
            scope.cancel()
        with anyio.fail_after(5):
            while _in_flight(a_server):  # noqa: ASYNC110 - the cancellation crosses Redis
                await anyio.sleep(0.01)


def _session_call(
    name: str, session_id: str, outbound: RecordingOutbound | None = None, **arguments: Any
) -> Any:
    call = legacy(
        "tools/call",
        {"name": name, "arguments": arguments},
        principal=ALICE,
        capabilities=ELICIT,
        outbound=outbound,
    )
    call.headers = {"mcp-session-id": session_id}
    call.session = LegacySession("2025-11-25", ELICIT, {}, ALICE.key, True)
    return call


async def test_a_sessions_requests_reach_its_child_on_whichever_replica_holds_it() -> None:
    async with replicas(upstream=app_upstream(isolation="per-session")) as [(_, a, a_bus), (_, b, _)]:
        first = result_of(await a.handle(_session_call("test__remember", "s1", note="one")))
        assert first["structuredContent"]["result"] == ["one"]
        # On the other replica: the same child (its memory has the first note), not a new one.
        second = result_of(await b.handle(_session_call("test__remember", "s1", note="two")))
        assert second["structuredContent"]["result"] == ["one", "two"]
        # Another session of the same principal, first seen on B: its own child, held by B.
        other = result_of(await b.handle(_session_call("test__remember", "s2", note="b")))
        assert other["structuredContent"]["result"] == ["b"]
        # The upstream's question reaches the client through the replica it talks to.
        outbound = RecordingOutbound(answers=[YES])
        asked = result_of(await b.handle(_session_call("test__confirm", "s1", outbound, question="Go?")))
        assert text_of(asked) == "accept:True"
        assert [method for method, _ in outbound.requests] == ["elicitation/create"]
        # The holder gone: its child went with it; the session's next request starts a new child.
        await a_bus.aclose()
        again = result_of(await b.handle(_session_call("test__remember", "s1", note="three")))
        assert again["structuredContent"]["result"] == ["three"]
