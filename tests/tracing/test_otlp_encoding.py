"""mcpserve's OTLP encoder, read back with the official protobuf classes.

Every span the exporter sends is written by hand (``mcpserve.observability.otlp``); these spans
cover every attribute type, events, links, status, remote and local parents, several resources
and scopes. What the official classes decode must be what the SDK's own encoder produces.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from mcpserve.observability.otlp import encode_spans
from mcpserve.observability.tracing import Sampling, ServerSpan, ServerSpans, SharedAttributes

EVERY_TYPE: dict[str, Any] = {
    "text": "héllo ✓",
    "empty": "",
    "yes": True,
    "no": False,
    "zero": 0,
    "small": 7,
    "large": 2**62,
    "negative": -5,
    "most negative": -(2**63),
    "ratio": 0.25,
    "negative ratio": -1e300,
    "texts": ("a", "", "c"),
    "flags": (True, False),
    "ints": (1, -1, 300),
    "floats": (0.5, 2.0),
    "long": "x" * 70_000,  # a length of three varint bytes
}


def _remote(sampled: bool = True) -> SpanContext:
    return SpanContext(
        secrets.randbits(128) or 1,
        secrets.randbits(64) or 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0),
        trace_state=TraceState([("vendor", "a1"), ("other", "b")]),
    )


def _recorded_spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    resource = Resource({"service.name": "encoded", "replicas": 3}, schema_url="https://example.com/r")
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    plain = provider.get_tracer("plain")
    versioned = provider.get_tracer(
        "versioned", "1.2.3", schema_url="https://example.com/s", attributes={"scope.kind": "test"}
    )
    with plain.start_as_current_span("root", kind=SpanKind.SERVER, attributes=EVERY_TYPE) as root:
        root.add_event("started", {"step": 1, "names": ("a", "b")}, timestamp=1_700_000_000_000_000_123)
        root.add_event("bare")
        with versioned.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "upstream refused"))
            child.add_link(_remote(), {"link.kind": "retry"})
        with plain.start_as_current_span("ok") as ok:
            ok.set_status(StatusCode.OK)
    under_remote = set_span_in_context(NonRecordingSpan(_remote()))
    with versioned.start_as_current_span(
        "continued", context=under_remote, kind=SpanKind.CONSUMER, links=[Link(_remote(False))]
    ):
        pass
    other = TracerProvider(resource=Resource({"service.name": "second"}))
    other.add_span_processor(SimpleSpanProcessor(exporter))
    with other.get_tracer("plain").start_as_current_span("elsewhere", kind=SpanKind.PRODUCER):
        pass
    return list(exporter.get_finished_spans())


def _server_span(parent: SpanContext | None) -> ReadableSpan:
    processor = SimpleSpanProcessor(InMemorySpanExporter())
    spans = ServerSpans(
        Sampling(1.0, parent_based=True),
        processor,
        Resource({"service.name": "encoded"}),
        InstrumentationScope("mcpserve", "9"),
    )
    span = spans.start(
        parent,
        lambda name: (name, {"mcp.method.name": "tools/call", "jsonrpc.request.id": "1"}),
        "tools/call echo",
        [Link(_remote(), {"transport": True})],
        start_time=1_000,
    )
    span.set_attribute("late", 1.5)
    span.add_event("thought")
    span.record_exception(ValueError("bad input"))
    span.set_status(Status(StatusCode.ERROR, "-32602"))
    span.end(end_time=2_000)
    assert isinstance(span, ReadableSpan)
    return span


def _decoded(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    decoded: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(encode_spans(spans))
    return decoded


def test_sdk_spans_of_every_shape_decode_as_the_sdks_encoder_writes_them() -> None:
    spans = _recorded_spans()
    decoded = _decoded(spans)
    assert decoded == sdk_encode_spans(spans)
    assert [len(r.scope_spans) for r in decoded.resource_spans] == [2, 1]  # grouped as the SDK groups
    root = next(s for r in decoded.resource_spans for g in r.scope_spans for s in g.spans if s.name == "root")
    values = {kv.key: kv.value for kv in root.attributes}
    assert values["text"].string_value == "héllo ✓"
    assert values["empty"].HasField("string_value")  # a default inside a oneof is still written
    assert values["no"].HasField("bool_value") and not values["no"].bool_value
    assert values["most negative"].int_value == -(2**63)
    assert [v.int_value for v in values["ints"].array_value.values] == [1, -1, 300]
    assert len(values["long"].string_value) == 70_000


def test_a_server_span_decodes_with_its_parent_link_events_and_status() -> None:
    parent = _remote()
    for span in (_server_span(parent), _server_span(None)):
        decoded = _decoded([span])
        assert decoded == sdk_encode_spans([span])
    (server,) = _decoded([_server_span(parent)]).resource_spans[0].scope_spans[0].spans
    assert server.parent_span_id == parent.span_id.to_bytes(8, "big")
    assert server.trace_id == parent.trace_id.to_bytes(16, "big")
    assert server.trace_state == "vendor=a1,other=b"
    assert server.flags == 0x300  # the parent is known to be remote
    assert (server.start_time_unix_nano, server.end_time_unix_nano) == (1_000, 2_000)
    assert server.kind == 2  # SPAN_KIND_SERVER
    assert (server.status.code, server.status.message) == (2, "-32602")
    assert [event.name for event in server.events] == ["thought", "exception"]
    assert server.links[0].attributes[0].value.bool_value is True


def _request_span(
    spans: ServerSpans, shared: SharedAttributes, request_id: object, session: str | None
) -> ServerSpan:
    """A request's span as the dispatcher makes a sampled new trace's: its fields, no attribute dict."""
    span = spans.root(
        secrets.randbits(128) or 1, secrets.randbits(64) or 1, "tools/call echo", shared, request_id, session
    )
    span.end()
    return span


def test_request_spans_as_the_dispatcher_makes_them_decode_as_the_sdks_encoder_writes_them() -> None:
    """Written from their fields in one formatting: request ids of every length, with a session or not."""
    spans = ServerSpans(
        Sampling(1.0, parent_based=True),
        SynchronousMultiSpanProcessor(),  # type: ignore[no-untyped-call]
        Resource({"service.name": "encoded"}),
        InstrumentationScope("mcpserve", "9"),
    )
    shared = SharedAttributes(
        {"mcp.method.name": "tools/call", "gen_ai.tool.name": "echo", "network.transport": "tcp"}
    )
    ids: list[object] = [
        7,
        2**40,
        "9" * 103,
        "9" * 104,
        "x" * 200,
        "é",
        None,
    ]  # 103: the longest one-byte length
    made = [
        _request_span(spans, shared, request_id, f"s{n}" if n % 2 else None)
        for n, request_id in enumerate(ids)
    ]
    ours = ExportTraceServiceRequest.FromString(
        encode_spans(made)
    )  # before the SDK's encoder builds their dicts
    assert ours == sdk_encode_spans(made)
    decoded = ours.resource_spans[0].scope_spans[0].spans
    for span, request_id, n in zip(decoded, ids, range(len(ids)), strict=True):
        values = {kv.key: kv.value.string_value for kv in span.attributes}
        assert values.get("jsonrpc.request.id") == (None if request_id is None else str(request_id))
        assert values.get("mcp.session.id") == (f"s{n}" if n % 2 else None)
        assert values["gen_ai.tool.name"] == "echo" and span.name == "tools/call echo"


def test_a_failed_request_span_from_its_fields_decodes_as_the_sdks_encoder_writes_it() -> None:
    """A request span with a status is written field by field, its attributes from its own fields."""
    spans = ServerSpans(
        Sampling(1.0, parent_based=True),
        SynchronousMultiSpanProcessor(),  # type: ignore[no-untyped-call]
        Resource({"service.name": "encoded"}),
        InstrumentationScope("mcpserve", "9"),
    )
    shared = SharedAttributes({"mcp.method.name": "tools/call", "network.transport": "tcp"})
    span = spans.root(secrets.randbits(128) or 1, 5, "tools/call", shared, 3, "session")
    span.set_status(Status(StatusCode.ERROR, "tool_error"))
    span.end()
    (decoded,) = _decoded([span]).resource_spans[0].scope_spans[0].spans
    assert _decoded([span]) == sdk_encode_spans([span])
    assert [kv.key for kv in decoded.attributes] == [
        "mcp.method.name",
        "network.transport",
        "jsonrpc.request.id",
        "mcp.session.id",
    ]
    assert (decoded.status.code, decoded.status.message) == (2, "tool_error")


def test_values_the_wire_cannot_carry_are_left_out_not_fatal() -> None:
    plain = ReadableSpan(
        "plain", _remote(), attributes={"too large": 2**64, "kept": "yes"}, resource=Resource({})
    )
    spans = ServerSpans(
        Sampling(1.0, parent_based=True),
        SimpleSpanProcessor(InMemorySpanExporter()),
        Resource({}),
        InstrumentationScope("t"),
    )
    server = spans.start(None, lambda name: (name, {"kept": "yes"}), "server")
    server.set_attribute("too large", 2**64)  # a valid Python attribute, beyond int64
    server.end()
    for span in (plain, server):
        assert isinstance(span, ReadableSpan)
        (decoded,) = _decoded([span]).resource_spans[0].scope_spans[0].spans
        assert [kv.key for kv in decoded.attributes] == ["kept"]


def test_no_spans_is_an_empty_request() -> None:
    assert encode_spans([]) == b""
    assert ExportTraceServiceRequest.FromString(b"") == sdk_encode_spans([])
