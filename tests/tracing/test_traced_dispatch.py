"""The traced dispatcher, limiter and log processor in-process, on the real OpenTelemetry SDK."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

import anyio
import orjson
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags, TraceState

from mcpserve import MCPServer
from mcpserve.config import load_settings
from mcpserve.observability import tracing as tracing_module
from mcpserve.observability.logs import get_logger
from mcpserve.observability.requests import RequestRecord, current_request
from mcpserve.observability.traced import TracedDispatcher, TracedLimiter
from mcpserve.observability.tracing import (
    LeftOut,
    Sampling,
    SdkServerSpans,
    ServerSpans,
    SharedAttributes,
    inject_meta,
    operation_span,
    stop_using,
    tracer,
    use_span,
)
from mcpserve.protocol import jsonrpc
from mcpserve.protocol.envelope import read_request_meta
from mcpserve.ratelimit import RateGate
from mcpserve.runtime import build_dispatcher, build_http_app, configure_logging
from mcpserve.server.call import Call
from mcpserve.server.context import Context
from mcpserve.server.dispatch import Dispatcher
from mcpserve.tracing_setup import (
    Provider,
    build_sampler,
    build_sampling,
    build_tracer_provider,
    server_spans,
)
from tests.support.asgi import MODERN_HEADERS, request
from tests.support.logcheck import check_log_lines
from tests.support.wire import modern_request

from .conftest import Recorded

pytestmark = pytest.mark.anyio

TRACED = {"auth": "none", "tracing": True, "rate_limit_per_minute": 0, "rate_limit_per_hour": 0}
stdlib_logger = logging.getLogger("tests.tracing.tool")


def _app() -> MCPServer:
    app = MCPServer("traced-tests")

    @app.tool()
    async def chatty(text: str) -> str:
        get_logger("tests.tracing.tool").info("structlog line", text=text)
        stdlib_logger.warning("stdlib line")
        with tracer("tests.tracing").start_as_current_span("inner"):
            return text

    @app.tool()
    def sync_chatty() -> str:
        stdlib_logger.warning("from a worker thread")
        return "done"

    @app.tool()
    async def sleepy() -> str:
        await anyio.sleep(30)
        return "late"

    @app.tool()
    async def confirm(ctx: Context) -> str:
        answer = await ctx.elicit("Sure?", {"type": "object", "properties": {}})
        return answer.action

    return app


def _modern(method: str, params: dict[str, Any] | None = None, **meta: Any) -> Call:
    raw = modern_request(1, method, params, capabilities={"elicitation": {}})
    raw["params"]["_meta"].update(meta)
    message = jsonrpc.parse_message(raw)
    assert isinstance(message, jsonrpc.Request)
    return Call.modern(message, read_request_meta(message.params))


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def test_the_dispatcher_is_traced_only_when_tracing_is_on() -> None:
    app = _app()
    assert type(build_dispatcher(app, load_settings({"auth": "none"}))) is Dispatcher
    assert isinstance(build_dispatcher(app, load_settings(TRACED)), TracedDispatcher)
    disabled = load_settings({**TRACED, "otel_sdk_disabled": True})
    assert type(build_dispatcher(app, disabled)) is Dispatcher


async def test_a_tool_call_is_a_server_span_with_a_tool_child_and_traced_log_lines(spans: Recorded) -> None:
    stream = io.BytesIO()
    configure_logging(load_settings({**TRACED, "log_level": "debug"}), stream)
    dispatcher = build_dispatcher(_app(), load_settings(TRACED))
    trace_id, parent, traceparent = _traceparent()
    call = _modern(
        "tools/call", {"name": "chatty", "arguments": {"text": "hi"}}, traceparent=traceparent, baggage="k=v"
    )
    response = await dispatcher.handle(call)
    assert response["result"]["isError"] is False
    server = spans.named("tools/call chatty")
    inner = spans.named("inner")
    assert server.kind is SpanKind.SERVER
    assert _hex(server.context.trace_id, 32) == trace_id
    assert server.parent is not None and _hex(server.parent.span_id, 16) == parent
    assert server.parent.is_remote
    assert dict(server.attributes or {}) == {
        "mcp.method.name": "tools/call",
        "jsonrpc.request.id": "1",
        "mcp.protocol.version": "2026-07-28",
        "network.transport": "pipe",
        "gen_ai.tool.name": "chatty",
        "gen_ai.operation.name": "execute_tool",
    }
    assert inner.parent is not None and inner.parent.span_id == server.context.span_id  # tool code joins in
    lines = [
        line for line in check_log_lines(stream.getvalue()) if line.get("logger") == "tests.tracing.tool"
    ]
    assert [line["event"] for line in lines] == ["structlog line", "stdlib line"]
    for line in lines:
        assert line["trace_id"] == trace_id
        assert line["span_id"] == _hex(server.context.span_id, 16)
    summary = orjson.loads(stream.getvalue().splitlines()[0])  # the start summary, outside any trace
    assert str(summary["event"]).startswith("mcpserve ") and "trace_id" not in summary


async def test_a_sync_tool_logs_with_the_trace_from_its_worker_thread(spans: Recorded) -> None:
    stream = io.BytesIO()
    configure_logging(load_settings(TRACED), stream)
    dispatcher = build_dispatcher(_app(), load_settings(TRACED))
    trace_id, _, traceparent = _traceparent()
    await dispatcher.handle(_modern("tools/call", {"name": "sync_chatty"}, traceparent=traceparent))
    server = spans.named("tools/call sync_chatty")
    (line,) = [line for line in check_log_lines(stream.getvalue()) if line["event"] == "from a worker thread"]
    assert (line["trace_id"], line["span_id"]) == (trace_id, _hex(server.context.span_id, 16))


async def test_errors_timeouts_and_questions_are_told_apart(spans: Recorded) -> None:
    settings = load_settings({**TRACED, "tool_timeouts": {"sleepy": 0.05}})
    dispatcher = build_dispatcher(_app(), settings)
    missing = await dispatcher.handle(_modern("no/such/method"))
    assert missing["error"]["code"] == -32601
    failed = spans.named("no/such/method")
    assert failed.attributes is not None
    assert (failed.attributes["error.type"], failed.attributes["rpc.response.status_code"]) == (
        "-32601",
        "-32601",
    )
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == missing["error"]["message"]

    timed_out = await dispatcher.handle(_modern("tools/call", {"name": "sleepy"}))
    assert timed_out["result"]["isError"] is True
    assert (spans.named("tools/call sleepy").attributes or {})["error.type"] == "tool_error"

    asked = await dispatcher.handle(_modern("tools/call", {"name": "confirm"}))
    assert asked["result"]["resultType"] == "input_required"
    question = spans.named("tools/call confirm")  # a question for the client is not a failure
    assert "error.type" not in (question.attributes or {})
    assert question.status.status_code is StatusCode.UNSET

    unknown = await dispatcher.handle(_modern("tools/call", {"name": "x" * 500}))
    assert unknown["result"]["isError"] is True
    named = [span for span in spans.all() if span.name == "tools/call"]  # not a name a client chose
    assert len(named) == 1 and (named[0].attributes or {})["gen_ai.tool.name"] == "x" * 200


async def test_a_cancelled_request_ends_its_span_as_cancelled(spans: Recorded) -> None:
    dispatcher = build_dispatcher(_app(), load_settings(TRACED))
    async with anyio.create_task_group() as group:
        group.start_soon(dispatcher.handle, _modern("tools/call", {"name": "sleepy"}))
        await anyio.sleep(0.05)  # the request is under way (the tool sleeps 30 s)
        group.cancel_scope.cancel()
    server = spans.named("tools/call sleepy")
    assert (server.attributes or {})["error.type"] == "cancelled"
    assert server.end_time is not None


async def test_an_unsampled_request_makes_no_children_and_no_trace_fields(spans: Recorded) -> None:
    stream = io.BytesIO()
    configure_logging(load_settings(TRACED), stream)
    dispatcher = build_dispatcher(_app(), load_settings(TRACED))
    trace_id, parent, _ = _traceparent()
    unsampled = f"00-{trace_id}-{parent}-00"  # the caller did not sample: parent-based sampling follows
    await dispatcher.handle(
        _modern("tools/call", {"name": "chatty", "arguments": {"text": "x"}}, traceparent=unsampled)
    )
    assert spans.all() == []
    assert all("trace_id" not in line for line in check_log_lines(stream.getvalue()))


async def test_malformed_trace_context_starts_a_new_trace(spans: Recorded) -> None:
    dispatcher = build_dispatcher(_app(), load_settings(TRACED))
    for bad in ("not-a-traceparent", 17, None):
        await dispatcher.handle(_modern("tools/list", traceparent=bad))
    listed = [span for span in spans.all() if span.name == "tools/list"]
    assert len(listed) == 3
    assert all(span.parent is None for span in listed)


async def test_inject_meta_carries_the_current_trace_into_an_outgoing_request(spans: Recorded) -> None:
    assert inject_meta({"progressToken": 1}) == {"progressToken": 1}  # no current span: nothing added
    with operation_span(
        tracer(), "tools/call upstream", SpanKind.CLIENT, {"mcp.method.name": "tools/call"}
    ) as span:
        meta = inject_meta()
    context = span.get_span_context()
    version, trace_id, span_id, flags = meta["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", _hex(context.trace_id, 32), _hex(context.span_id, 16))
    assert int(flags, 16) & 1  # sampled
    with pytest.raises(RuntimeError), operation_span(tracer(), "failing", SpanKind.CLIENT, {}):
        raise RuntimeError("upstream down")
    failing = spans.named("failing")
    assert (failing.attributes or {})["error.type"] == "RuntimeError"
    assert failing.status.description == "upstream down"


async def test_a_redis_budget_check_is_a_client_span_of_the_request_it_admits(spans: Recorded) -> None:
    prefix = f"test-trace-{secrets.token_hex(4)}:"
    settings = load_settings(
        {
            **TRACED,
            "rate_limit_per_minute": 100,
            "redis_url": "redis://127.0.0.1:6379/0",
            "redis_prefix": prefix,
            "state": "memory",  # Redis for the rate limiter only: the span under test is its budget check
        }
    )
    app = _app()
    http = build_http_app(app, settings)
    limits = http.endpoint.limits
    assert isinstance(limits, RateGate) and isinstance(limits.limiter, TracedLimiter)
    trace_id, _, traceparent = _traceparent()
    body = modern_request(4, "tools/call", {"name": "chatty", "arguments": {"text": "hi"}})
    body["params"]["_meta"]["traceparent"] = traceparent
    headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": "chatty"}
    async with app.lifespan():
        reply = await request(http, "POST", headers=headers, body=orjson.dumps(body))
    assert reply.status == 200, reply.body
    server = spans.named("tools/call chatty")
    redis = spans.named("EVALSHA")
    assert redis.kind is SpanKind.CLIENT
    assert redis.parent is not None and redis.parent.span_id == server.context.span_id
    assert _hex(redis.context.trace_id, 32) == trace_id
    assert dict(redis.attributes or {}) == {
        "db.system.name": "redis",
        "db.operation.name": "EVALSHA",
        "server.address": "127.0.0.1",
        "server.port": 6379,
        "db.namespace": "0",
    }
    assert server.start_time is not None and redis.start_time is not None and redis.end_time is not None
    assert server.start_time == redis.start_time  # the request's span starts at its admission
    assert redis.end_time <= (server.end_time or 0)
    assert (server.attributes or {})["network.transport"] == "tcp"


async def test_a_failed_redis_call_is_an_error_span_and_the_request_still_runs(spans: Recorded) -> None:
    class Broken:
        async def hit(self, budgets: Any) -> Any:
            raise ConnectionError("redis is down")

        async def aclose(self) -> None:
            return None

    limiter = TracedLimiter(Broken(), "unix:///tmp/redis.sock")
    with pytest.raises(ConnectionError):
        await limiter.hit([])
    await limiter.aclose()
    dispatcher = build_dispatcher(_app(), load_settings(TRACED))
    await dispatcher.handle(_modern("tools/list"))
    redis = spans.named("EVALSHA")
    assert (redis.attributes or {})["error.type"] == "ConnectionError"
    assert (redis.attributes or {})["server.address"] == "/tmp/redis.sock"
    assert trace.get_current_span().is_recording() is False


async def test_requests_without_trace_context_are_sampled_early_with_the_sdks_verdict(
    spans: Recorded,
) -> None:
    ratio = {**TRACED, "otel_traces_sampler": "parentbased_traceidratio", "otel_traces_sampler_arg": 0.5}
    settings = load_settings({**ratio, "otel_traces_exporter": "none"})
    assert server_spans() is cast(Any, trace.get_tracer_provider()).server_spans  # the process's: ours
    provider = build_tracer_provider(settings)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = MCPServer("early")

    @app.tool()
    async def outgoing() -> str:
        """What a request this tool sent upstream would carry."""
        return str(inject_meta()["traceparent"])

    dispatcher = TracedDispatcher(app, tracer=provider.get_tracer("tests"), spans=provider.server_spans)
    sent = []
    for _ in range(200):
        response = await dispatcher.handle(_modern("tools/call", {"name": "outgoing"}))
        sent.append(response["result"]["content"][0]["text"].split("-"))
    recorded = {_hex(span.context.trace_id, 32) for span in exporter.get_finished_spans()}
    assert 40 <= len(recorded) <= 160  # about half, as the ratio says
    for _, trace_id, _, flags in sent:
        # Outgoing requests carry every request's trace, flagged sampled exactly when it was recorded,
        # on an id a ratio sampler downstream (the same ratio, the id's low 64 bits) agrees with.
        assert bool(int(flags, 16) & 1) == (trace_id in recorded) == (int(trace_id[16:], 16) < 2**63)
    assert len({trace_id for _, trace_id, _, _ in sent}) == 200
    assert spans.all() == []  # nothing reached the process's provider
    provider.shutdown()


SAMPLERS = [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]


@pytest.mark.parametrize("name", SAMPLERS)
def test_the_early_decision_is_the_sdk_samplers_verdict(name: str) -> None:
    settings = load_settings(
        {
            **TRACED,
            "otel_traces_sampler": name,
            "otel_traces_sampler_arg": 0.3,
            "otel_traces_exporter": "none",
        }
    )
    sampler, early = build_sampler(settings), build_sampling(settings)
    for flags in (None, TraceFlags.SAMPLED, TraceFlags.DEFAULT):
        for _ in range(300):
            trace_id = secrets.randbits(128) or 1
            parent = None
            context = None
            if flags is not None:
                parent = SpanContext(trace_id, secrets.randbits(64) or 1, True, TraceFlags(flags))
                context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
            decision = sampler.should_sample(context, trace_id, "tools/call").decision
            verdict = decision is Decision.RECORD_AND_SAMPLE
            assert early.sampled(trace_id, parent) == verdict, (name, flags, trace_id)


def test_a_request_left_out_costs_a_bare_span_whose_context_is_built_once() -> None:
    def never(_: object) -> tuple[str, dict[str, Any]]:
        raise AssertionError("a request left out has no name or attributes to compute")

    processor = SimpleSpanProcessor(InMemorySpanExporter())
    nothing = ServerSpans(
        Sampling(0.0, parent_based=True), processor, Resource({}), InstrumentationScope("t")
    )
    left = nothing.start(None, never, None)
    assert isinstance(left, LeftOut) and not left.is_recording() and left.get_span_context().is_valid
    # Built on first read, then the same: a child span and an outgoing request see one context.
    assert left.get_span_context() is left.get_span_context()
    assert not left.get_span_context().trace_flags.sampled
    caller = SpanContext(secrets.randbits(128) or 1, 5, True, TraceFlags(0), TraceState([("vendor", "x")]))
    followed = nothing.start(caller, never, None).get_span_context()  # an unsampled caller, followed
    assert (followed.trace_id, followed.trace_state, followed.is_remote) == (
        caller.trace_id,
        caller.trace_state,
        False,
    )
    assert followed.span_id != caller.span_id


def test_request_spans_reach_the_processors_the_provider_has_at_each_span() -> None:
    """Request spans call the processors directly; one added later is called from the next span on."""

    class Noting(SpanProcessor):
        def __init__(self) -> None:
            self.started: list[object] = []
            self.ended: list[object] = []

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            self.started.append(span)

        def on_end(self, span: Any) -> None:
            self.ended.append(span)

    processors = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
    spans = ServerSpans(Sampling(1.0, parent_based=True), processors, Resource({}), InstrumentationScope("t"))

    def one() -> trace.Span:
        span = spans.root(1, 2, "tools/call", SharedAttributes({}), 1, None)
        span.end()
        return span

    one()  # no processor yet: nothing to call
    noting, exporter = Noting(), InMemorySpanExporter()
    processors.add_span_processor(noting)
    first = one()
    assert noting.started == noting.ended == [first]
    processors.add_span_processor(SimpleSpanProcessor(exporter))  # its on_start does nothing
    second = one()
    assert noting.started == noting.ended == [first, second]
    assert list(exporter.get_finished_spans()) == [cast(ReadableSpan, second)]
    alone = Noting()  # a provider's processor that is not the SDK's fan-out: called as it is
    direct = ServerSpans(Sampling(1.0, parent_based=True), alone, Resource({}), InstrumentationScope("t"))
    third = direct.root(1, 3, "tools/call", SharedAttributes({}), 2, None)
    third.end()
    assert alone.started == alone.ended == [third]


async def test_a_provider_installed_before_mcpserves_takes_the_request_spans() -> None:
    """Another provider (an auto-instrumentation wrapper's) gets request spans through its tracer."""
    exporter = InMemorySpanExporter()
    theirs = TracerProvider()
    theirs.add_span_processor(SimpleSpanProcessor(exporter))
    dispatcher = TracedDispatcher(
        _app(), tracer=theirs.get_tracer("t"), spans=SdkServerSpans(theirs.get_tracer("t"))
    )
    trace_id, parent, traceparent = _traceparent()
    await dispatcher.handle(_modern("tools/call", {"name": "sync_chatty"}, traceparent=traceparent))
    (server,) = [span for span in exporter.get_finished_spans() if span.name == "tools/call sync_chatty"]
    assert server.kind is SpanKind.SERVER and _hex(server.context.trace_id, 32) == trace_id
    assert server.parent is not None and _hex(server.parent.span_id, 16) == parent
    assert (server.attributes or {})["gen_ai.tool.name"] == "sync_chatty"


def test_a_request_span_is_made_current_through_opentelemetrys_own_context(spans: Recorded) -> None:
    assert tracing_module._CURRENT is not None  # the default runtime context: the two-call path
    span = trace.NonRecordingSpan(SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED)))
    with tracer("tests").start_as_current_span("outer") as outer:
        token = use_span(span)
        assert trace.get_current_span() is span
        with tracer("tests").start_as_current_span("child"):  # the SDK nests its spans under it
            pass
        stop_using(token)
        assert trace.get_current_span() is outer
    child = spans.named("child")
    assert child.parent is not None and (child.parent.trace_id, child.parent.span_id) == (1, 2)


def _recording(settings: dict[str, Any]) -> tuple[Provider, InMemorySpanExporter]:
    """mcpserve's provider for ``settings``, exporting nowhere, and what it records."""
    provider = build_tracer_provider(load_settings({**settings, "otel_traces_exporter": "none"}))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@contextmanager
def _request_context() -> Iterator[ContextVar[otel_context.Context]]:
    """Requests run as under the HTTP transport: in a RequestContext, installed for the block on
    the context variable it yields."""
    current = tracing_module._CURRENT
    assert current is not None
    installed = current.set(tracing_module.RequestContext())
    try:
        yield current
    finally:
        current.reset(installed)


async def test_under_http_a_request_left_out_makes_its_span_only_when_something_reads_it(
    spans: Recorded,
) -> None:
    """The HTTP transport's requests start in a RequestContext: a request left out notes its trace
    on its record, and its span (the same one for every reader) exists only once read."""
    ratio = {**TRACED, "otel_traces_sampler": "parentbased_traceidratio", "otel_traces_sampler_arg": 0.5}
    provider, exporter = _recording(ratio)
    app = MCPServer("on-demand")

    @app.tool()
    async def outgoing() -> str:
        """A child span, then what a request sent upstream would carry (read twice)."""
        with provider.get_tracer("tests").start_as_current_span("child") as child:
            child_trace = child.get_span_context().trace_id
        first, second = inject_meta()["traceparent"], inject_meta()["traceparent"]
        assert first == second  # one span, however often it is read
        assert _hex(child_trace, 32) == first.split("-")[1]  # the child is on the request's trace
        return str(first)

    @app.tool()
    def from_a_thread() -> str:
        return _hex(trace.get_current_span().get_span_context().trace_id, 32)

    dispatcher = TracedDispatcher(app, tracer=provider.get_tracer("tests"), spans=provider.server_spans)
    with _request_context() as current:
        request_context = current.get()
        assert trace.get_current_span() is trace.INVALID_SPAN  # outside a request: an empty context
        sent, unread = [], 0
        for n in range(200):
            record = RequestRecord(f"r{n}", 0.0, "POST")
            token = current_request.set(record)
            try:
                tool = "from_a_thread" if n % 4 == 0 else "outgoing"
                response = await dispatcher.handle(_modern("tools/call", {"name": tool}))
                assert current.get() is request_context  # nothing made current here
            finally:
                current_request.reset(token)
            text = response["result"]["content"][0]["text"]
            if tool == "outgoing":
                sent.append(text.split("-"))
            elif record.span is not None:  # the worker thread read the request's own span
                left = cast(LeftOut, record.span)
                assert _hex(left.get_span_context().trace_id, 32) == text
            unread += isinstance(record.span, int)
        assert unread == 0  # every tool read its span: each left-out record holds one
        recorded = {_hex(span.context.trace_id, 32) for span in exporter.get_finished_spans()}
        assert 30 <= len([trace_id for _, trace_id, _, _ in sent if trace_id in recorded]) <= 120  # ~1/2
        for _, trace_id, _, flags in sent:
            assert bool(int(flags, 16) & 1) == (trace_id in recorded) == (int(trace_id[16:], 16) < 2**63)
        assert len({trace_id for _, trace_id, _, _ in sent}) == len(sent)
    assert spans.all() == []
    provider.shutdown()


async def test_under_http_a_sampled_request_is_current_through_its_record() -> None:
    """A sampled new trace under a RequestContext: no context is set; readers find the request's
    span through its record, so a child span is its child, and the record names its ids."""
    provider, exporter = _recording(TRACED)
    app = MCPServer("sampled")

    @app.tool()
    async def nested() -> str:
        with provider.get_tracer("tests").start_as_current_span("child") as child:
            assert isinstance(child, ReadableSpan) and child.parent is not None
            return f"{_hex(child.parent.trace_id, 32)}-{_hex(child.parent.span_id, 16)}"

    dispatcher = TracedDispatcher(app, tracer=provider.get_tracer("tests"), spans=provider.server_spans)
    with _request_context() as current:
        request_context = current.get()
        record = RequestRecord("r", 0.0, "POST")
        token = current_request.set(record)
        try:
            response = await dispatcher.handle(_modern("tools/call", {"name": "nested"}))
            assert current.get() is request_context  # nothing was made current
        finally:
            current_request.reset(token)
    server = next(span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER)
    assert record.span is server and record.trace is not None
    assert response["result"]["content"][0]["text"] == "-".join(record.trace)  # the child's parent
    assert (_hex(server.context.trace_id, 32), _hex(server.context.span_id, 16)) == record.trace
    assert server.name == "tools/call nested" and (server.attributes or {})["jsonrpc.request.id"] == "1"
    provider.shutdown()


def test_a_request_context_keeps_a_left_out_span_in_the_contexts_built_from_it() -> None:
    request_context = tracing_module.RequestContext()
    record = RequestRecord("r", 0.0, "POST", span=12345)
    token = current_request.set(record)
    try:
        span = trace.get_current_span(request_context)
        assert isinstance(span, LeftOut) and record.span is span
        assert tracing_module.SPAN_KEY in request_context and request_context[tracing_module.SPAN_KEY] is span
        derived = otel_context.set_value("other", 1, request_context)  # as instrumentations do
        assert trace.get_current_span(derived) is span and derived["other"] == 1
        assert span.get_span_context().trace_id & (2**64 - 1) == 12345  # the decision's bits
    finally:
        current_request.reset(token)
    assert trace.get_current_span(request_context) is trace.INVALID_SPAN
    assert tracing_module.SPAN_KEY not in request_context
    with pytest.raises(KeyError):
        request_context[tracing_module.SPAN_KEY]
