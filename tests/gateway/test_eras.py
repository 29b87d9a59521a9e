"""Both eras on the client side against a 2025-era stdio upstream: questions, progress,
cancellation, timeouts and trace context all cross the gateway."""

from __future__ import annotations

import anyio
import pytest

from mcpserve.protocol.envelope import PROTOCOL_VERSION_KEY
from mcpserve.server.dispatch import Dispatcher
from tests.gateway.support import app_upstream, eventually, gateway, upstream_of
from tests.server.support import ELICIT, RecordingOutbound, legacy, modern, result_of, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CONFIRM = {"name": "test__confirm", "arguments": {"question": "Go?"}}
YES = {"action": "accept", "content": {"ok": True}}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_a_2025_client_answers_the_upstreams_question_as_a_real_request() -> None:
    async with gateway(app_upstream()) as (_, d):
        outbound = RecordingOutbound(answers=[YES])
        result = result_of(
            await d.handle(legacy("tools/call", CONFIRM, capabilities=ELICIT, outbound=outbound))
        )
        assert text_of(result) == "accept:True"
        ((method, params),) = outbound.requests
        assert method == "elicitation/create"
        assert params["message"] == "Go?"


async def test_a_2026_client_gets_input_required_and_its_answer_reaches_the_waiting_call() -> None:
    async with gateway(app_upstream()) as (server, d):
        first = result_of(await d.handle(modern("tools/call", CONFIRM, capabilities=ELICIT)))
        assert first["resultType"] == "input_required"
        ((key, request),) = first["inputRequests"].items()
        assert request["method"] == "elicitation/create"
        # The upstream call is parked, still in flight on the child, waiting for the answer.
        assert upstream_of(server, "test").pool.children["shared"].in_flight == 1  # type: ignore[union-attr]
        retry = {**CONFIRM, "inputResponses": {key: YES}, "requestState": first["requestState"]}
        result = result_of(await d.handle(modern("tools/call", retry, request_id=2, capabilities=ELICIT)))
        # A second upstream call would have asked again: this answer went to the first one.
        assert result["resultType"] == "complete"
        assert text_of(result) == "accept:True"


async def test_a_stale_or_foreign_request_state_is_refused() -> None:
    async with gateway(app_upstream()) as (_, d):
        first = result_of(await d.handle(modern("tools/call", CONFIRM, capabilities=ELICIT)))
        (key,) = first["inputRequests"]
        retry = {**CONFIRM, "inputResponses": {key: YES}, "requestState": first["requestState"]}
        assert (
            text_of(result_of(await d.handle(modern("tools/call", retry, capabilities=ELICIT))))
            == "accept:True"
        )
        again = result_of(await d.handle(modern("tools/call", retry, capabilities=ELICIT)))
        assert again["isError"] is True
        assert "call the tool again" in text_of(again)


async def test_a_client_without_the_capability_gets_the_upstreams_failure() -> None:
    async with gateway(app_upstream()) as (_, d):
        result = result_of(await d.handle(modern("tools/call", CONFIRM, capabilities={})))
        assert result["isError"] is True


async def test_progress_reaches_the_client() -> None:
    async with gateway(app_upstream()) as (_, d):
        outbound = RecordingOutbound()
        call = legacy(
            "tools/call",
            {"name": "test__progress", "arguments": {"steps": 3}},
            progress_token="p1",
            outbound=outbound,
        )
        assert text_of(result_of(await d.handle(call))) == "progressed"
        progress = outbound.of("notifications/progress")
        assert [(p["progressToken"], p["progress"], p["total"]) for p in progress] == [
            ("p1", 1, 3),
            ("p1", 2, 3),
            ("p1", 3, 3),
        ]


async def test_only_trace_context_is_forwarded_in_meta() -> None:
    async with gateway(app_upstream()) as (_, d):
        meta = {"traceparent": TRACEPARENT, "tracestate": "a=1", "private": "not forwarded"}
        call = modern("tools/call", {"name": "test__meta", "arguments": {}, "_meta": meta})
        seen = result_of(await d.handle(call))["structuredContent"]
        assert seen["traceparent"] == TRACEPARENT
        assert seen["tracestate"] == "a=1"
        assert "private" not in seen
        assert PROTOCOL_VERSION_KEY not in seen


async def test_cancelling_a_call_cancels_it_upstream() -> None:
    async with gateway(app_upstream()) as (server, d):
        supervisor = upstream_of(server, "test").pool.children["shared"]  # type: ignore[union-attr]
        async with anyio.create_task_group() as group:
            group.start_soon(
                d.handle, modern("tools/call", {"name": "test__slow", "arguments": {"seconds": 30}})
            )
            await eventually(lambda: supervisor.in_flight == 1)
            group.cancel_scope.cancel()
        assert supervisor.in_flight == 0
        # The child is still serving.
        assert (
            text_of(
                result_of(
                    await d.handle(modern("tools/call", {"name": "test__echo", "arguments": {"text": "x"}}))
                )
            )
            == "x"
        )


async def test_the_upstreams_timeout_ends_a_call() -> None:
    async with gateway(app_upstream(timeout=0.3)) as (_, d):
        result = result_of(
            await Dispatcher(d.server).handle(
                modern("tools/call", {"name": "test__slow", "arguments": {"seconds": 30}})
            )
        )
        assert result["isError"] is True
        assert "0.3" in text_of(result)


async def test_prompts_and_resources_are_forwarded_with_mapped_uris() -> None:
    async with gateway(app_upstream()) as (_, d):
        await d.handle(modern("tools/call", {"name": "test__remember", "arguments": {"note": "kept"}}))
        listed = result_of(await d.handle(modern("resources/list")))
        assert [r["uri"] for r in listed["resources"]] == ["test+notes://all"]
        read = result_of(await d.handle(modern("resources/read", {"uri": "test+notes://all"})))
        assert read["contents"] == [{"uri": "test+notes://all", "mimeType": "text/plain", "text": "kept"}]
        prompt = result_of(
            await d.handle(modern("prompts/get", {"name": "test__greet", "arguments": {"who": "Ada"}}))
        )
        assert prompt["messages"][0]["content"]["text"] == "Hello, Ada!"


async def test_a_subscription_is_passed_upstream_and_its_updates_come_back() -> None:
    async with gateway(app_upstream()) as (server, d):
        call = legacy("resources/subscribe", {"uri": "test+notes://all"})
        assert result_of(await d.handle(call)) == {}
        assert call.session is not None and "test+notes://all" in call.session.subscriptions
        async with server.bus.subscribe() as events:
            await d.handle(modern("tools/call", {"name": "test__touch", "arguments": {}}))
            with anyio.fail_after(10):
                async for event in events:
                    if event["method"] == "notifications/resources/updated":
                        break
        assert event["params"] == {"uri": "test+notes://all"}


async def test_pooled_upstreams_refuse_subscriptions() -> None:
    async with gateway(app_upstream(isolation="per-principal")) as (_, d):
        refused = await d.handle(legacy("resources/subscribe", {"uri": "test+notes://all"}))
        assert "child per caller" in refused["error"]["message"]


async def test_an_apps_own_tool_wins_over_an_upstream_tool_of_the_same_name() -> None:
    from mcpserve.gateway.catalog import Catalogue, install  # noqa: PLC0415
    from mcpserve.gateway.config import UpstreamSpec  # noqa: PLC0415
    from mcpserve.server.app import MCPServer  # noqa: PLC0415

    server = MCPServer()
    server.add_tool(lambda: "mine", name="test__echo")
    catalogue = Catalogue(tools=[{"name": "echo", "inputSchema": {"type": "object"}}, {"name": "other"}])

    async def forward(*_: object) -> None:
        return None

    install(server, UpstreamSpec(name="test", command="x"), catalogue, forward, forward, forward)
    assert server.tool_names() == ["test__echo", "test__other"]
    assert getattr(server.registered_tool("test__echo"), "upstream", None) is None


async def test_allow_deny_and_rename_shape_what_is_served() -> None:
    async with gateway(
        app_upstream(tools={"allow": ["echo", "pid", "slow"], "deny": ["slow"]}, rename={"echo": "say"})
    ) as (server, d):
        assert [n for n in server.tool_names() if n.startswith("test__")] == ["test__say", "test__pid"]
        said = result_of(
            await d.handle(modern("tools/call", {"name": "test__say", "arguments": {"text": "hi"}}))
        )
        assert text_of(said) == "hi"  # called upstream by its own name, echo
        hidden = result_of(
            await d.handle(modern("tools/call", {"name": "test__slow", "arguments": {"seconds": 0}}))
        )
        assert hidden["isError"] is True


def test_with_tracing_the_gateways_own_span_is_the_upstreams_parent() -> None:
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    from mcpserve.gateway.forward import forwarded_meta  # noqa: PLC0415

    client = {"traceparent": TRACEPARENT, "other": "kept back"}
    assert forwarded_meta(client) == {"traceparent": TRACEPARENT}  # no current span: passed on
    assert forwarded_meta(None) is None
    with TracerProvider().get_tracer("test").start_as_current_span("gateway call") as span:
        sent = forwarded_meta(client)
    assert sent is not None
    assert sent["traceparent"].split("-")[1] == format(span.get_span_context().trace_id, "032x")
    assert sent["traceparent"].split("-")[2] == format(span.get_span_context().span_id, "016x")
