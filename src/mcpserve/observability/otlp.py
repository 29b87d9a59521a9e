"""OTLP/protobuf encoding of finished spans: an ``ExportTraceServiceRequest``, written by hand.

The SDK's exporter builds a Python protobuf object per span, attribute and value and then
serialises them: about 275k CPU instructions per span, more than the traced request itself.
The wire format is small (varints, fixed-width numbers and length-prefixed fields), so this
module writes the bytes directly from the spans, about a tenth of the work. The messages and
field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto`` and
``common/v1/common.proto``; what the SDK's encoder leaves out (a link's trace state, the trace
flags in ``flags``) is left out here too, so a collector sees the same spans as before.
Pure functions, no I/O.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from mcpserve.observability.tracing import REQUEST_ID, SESSION_ID, UNSET, ServerSpan, SharedAttributes

__all__ = ["encode_spans"]

_log = logging.getLogger(__name__)

_SMALL: Final = [bytes((n,)) for n in range(128)]  # the one-byte varints
_DOUBLE: Final = struct.Struct("<d").pack
_FIXED64: Final = struct.Struct("<Q").pack
_FIXED32: Final = struct.Struct("<I").pack
_INT64: Final = 0xFFFF_FFFF_FFFF_FFFF  # int64 is written as its two's complement, 10 bytes if negative
_HAS_IS_REMOTE: Final = 0x100  # SpanFlags: the parent's remoteness is known ...
_IS_REMOTE: Final = 0x200  # ... and it is remote
# Encoded attribute keys (a KeyValue's field 1), kept while there are few: keys repeat, values less.
_KEYS: dict[str, bytes] = {}
_MAX_KEYS: Final = 1024
# Encoded span attributes with a text value, by (key, value): most repeat from span to span (the
# method, the tool, the transport, the version). Emptied when full, so values that never repeat
# (request and session ids) cannot crowd out those that do for long.
_TEXT_ATTRIBUTES: dict[tuple[str, str], bytes] = {}
_NAMES: dict[str, bytes] = {}
_MAX_TEXT_ATTRIBUTES: Final = 4096
_NONE: Final[Mapping[str, Any]] = {}
_UNSET_STATUS: Final = b"\x7a\x00"
_REQUEST_ID_KEY: Final = b"\x0a" + bytes((len(REQUEST_ID),)) + REQUEST_ID.encode()  # KeyValue.key
# The request id's attribute field (9): lengths of the KeyValue, AnyValue and string, then the id.
_SHORT_ID: Final = b"\x4a%c" + _REQUEST_ID_KEY + b"\x12%c\x0a%c%b"
_MAX_SHORT_ID: Final = 128 - len(_REQUEST_ID_KEY) - 4  # the KeyValue's length still one varint byte
_TIMES: Final = struct.Struct("<BQBQ").pack  # start and end (fields 7, 8, fixed64) with their tags
# A request span with no parent, events, links or status, and its attributes as made: SERVER,
# trace id, span id, then name, times and attributes as encoded, UNSET status, flags (not remote).
_PLAIN: Final = b"\x30\x02\x0a\x10%b\x12\x08%b%b%b%b%b%b\x7a\x00\x85\x01" + struct.pack("<I", _HAS_IS_REMOTE)
_KINDS: Final = {kind: b"\x30" + bytes((kind.value + 1,)) for kind in SpanKind}  # the proto counts from 1


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value > 127:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the payload's length and the payload."""
    size = len(payload)
    if size < 128:
        return tag + _SMALL[size] + payload
    if size < 16384:
        return tag + bytes(((size & 0x7F) | 0x80, size >> 7)) + payload
    return tag + _varint(size) + payload


def _text(tag: bytes, value: str) -> bytes:
    return _field(tag, value.encode("utf-8", "surrogatepass"))


# -- common.proto: AnyValue, KeyValue ---------------------------------------------------------
def _any_value(value: Any) -> bytes:  # noqa: PLR0911 - one return per AnyValue case
    """The body of an AnyValue (a oneof: the field is written even when it holds a default)."""
    if isinstance(value, str):
        return _text(b"\x0a", value)
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"integer {value} does not fit int64")
        return b"\x18" + _varint(value & _INT64)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if value is None:
        return b""
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()))
    raise ValueError(f"a value of type {type(value).__name__} is not an OTLP attribute value")


def _key(key: str) -> bytes:
    encoded = _KEYS.get(key)
    if encoded is None:
        encoded = _text(b"\x0a", key)
        if len(_KEYS) < _MAX_KEYS:
            _KEYS[key] = encoded
    return encoded


def _key_value(key: str, value: Any) -> bytes:
    return _key(key) + _field(b"\x12", _any_value(value))


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> list[bytes]:
    """One ``tag`` field per attribute; one the wire cannot carry is left out, and logged."""
    if not attributes:
        return []
    fields = []
    for key, value in attributes.items():
        try:
            fields.append(_field(tag, _key_value(key, value)))
        except ValueError as exc:
            _log.warning("span attribute %r left out of the export: %s", key, exc)
    return fields


def _count(tag: bytes, count: int) -> list[bytes]:
    return [tag + _varint(count)] if count else []


# -- trace.proto: Span, Event, Link, Status ---------------------------------------------------
def _flags(parent: SpanContext | None) -> bytes:
    return _FIXED32(
        _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE
    )


def _events(span: ReadableSpan) -> list[bytes]:
    fields = []
    for event in span.events:
        body = [b"\x09" + _FIXED64(event.timestamp), _text(b"\x12", event.name)]
        body += _attributes(b"\x1a", event.attributes)
        body += _count(b"\x20", event.dropped_attributes)
        fields.append(_field(b"\x5a", b"".join(body)))
    return fields


def _links(span: ReadableSpan) -> list[bytes]:
    fields = []
    for link in span.links:
        context = link.context
        body = [
            b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        ]
        body += _attributes(b"\x22", link.attributes)
        body += _count(b"\x28", link.dropped_attributes)
        body.append(b"\x35" + _flags(context))
        fields.append(_field(b"\x6a", b"".join(body)))
    return fields


def _status(span: ReadableSpan) -> bytes:
    status = span.status
    code = status.status_code
    if code is StatusCode.UNSET and not status.description:
        return _UNSET_STATUS
    body = b"" if not status.description else _text(b"\x12", status.description)
    return _field(b"\x7a", body + b"\x18" + _SMALL[code.value] if code.value else body)


def _text_attribute(key: str, value: str) -> bytes:
    """A span's attribute field (9) with a text value, kept for the next span that has it."""
    field = _field(b"\x4a", _key(key) + _field(b"\x12", _text(b"\x0a", value)))
    if len(_TEXT_ATTRIBUTES) >= _MAX_TEXT_ATTRIBUTES:
        _TEXT_ATTRIBUTES.clear()
    _TEXT_ATTRIBUTES[key, value] = field
    return field


def _name(name: str) -> bytes:
    """A span's name field (5), kept for the next span of that name (names come from few)."""
    field = _text(b"\x2a", name)
    if len(_NAMES) >= _MAX_TEXT_ATTRIBUTES:
        _NAMES.clear()
    _NAMES[name] = field
    return field


def _fields(
    fields: list[bytes],
    context: SpanContext,
    parent: SpanContext | None,
    name: str,
    start: int | None,
    end: int | None,
    attributes: Mapping[str, Any],
) -> None:
    """The fields every span has, in the order of ``trace.proto`` (the kind is the caller's)."""
    fields += (
        b"\x0a\x10",
        context.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        context.span_id.to_bytes(8, "big"),
    )
    if context.trace_state:
        fields.append(_text(b"\x1a", ",".join(f"{k}={v}" for k, v in context.trace_state.items())))
    if parent is not None:
        fields += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    if name:
        fields.append(_NAMES.get(name) or _name(name))
    if start:
        fields += (b"\x39", _FIXED64(start))
    if end:
        fields += (b"\x41", _FIXED64(end))
    _span_attributes(fields, attributes)


def _span_attributes(fields: list[bytes], attributes: Mapping[str, Any]) -> None:
    """A span's attribute fields (9), in the mapping's order."""
    for key, value in attributes.items():
        if type(value) is str:
            fields.append(_TEXT_ATTRIBUTES.get((key, value)) or _text_attribute(key, value))
        else:
            fields += _attributes(b"\x4a", {key: value})


def _rest(fields: list[bytes], span: ReadableSpan) -> None:
    """What few spans have: dropped counts, events, links."""
    fields += _count(b"\x50", span.dropped_attributes)
    if span.events:
        fields += _events(span)
        fields += _count(b"\x60", span.dropped_events)
    if span.links:
        fields += _links(span)
        fields += _count(b"\x70", span.dropped_links)


def _shared_block(shared: SharedAttributes) -> bytes:
    """The attribute fields of attributes many spans share, encoded once and kept with them."""
    block: list[bytes] = []
    _span_attributes(block, shared.values)
    encoded = shared.encoded = b"".join(block)
    return encoded


def _request_id_field(request_id: object) -> bytes:
    """The ``jsonrpc.request.id`` attribute field: unique to its request, so not kept."""
    value = str(request_id).encode("utf-8", "surrogatepass")
    size = len(value)
    if size < _MAX_SHORT_ID:  # every length below fits one varint byte
        return _SHORT_ID % (size + len(_REQUEST_ID_KEY) + 4, size + 2, size, value)
    return _field(b"\x4a", _REQUEST_ID_KEY + _field(b"\x12", _field(b"\x0a", value)))


def _session_field(session: str) -> bytes:
    """The ``mcp.session.id`` attribute field: kept while its session goes on (2025-era calls)."""
    return _TEXT_ATTRIBUTES.get((SESSION_ID, session)) or _text_attribute(SESSION_ID, session)


def _server_span(span: ServerSpan) -> bytes:
    """A request's span, read from the fields it keeps (no property calls, no span context).

    Its attributes, until something read or set them, are the shared ones, encoded once per
    kind of request and kept with them, and the request's own ids. Most request spans have
    nothing else (no parent, events, links or status): those are written in one formatting.
    """
    values = span._values
    parent = span._parent
    name = span._name
    if (
        values is None
        and parent is None
        and span._status is UNSET
        and not span._events
        and not span._links
        and name
        and span._end_time
    ):
        shared = span._shared
        request_id = span._request_id
        session = span._session_id
        return _PLAIN % (
            span._trace_id.to_bytes(16, "big"),
            span._span_id.to_bytes(8, "big"),
            _NAMES.get(name) or _name(name),
            _TIMES(0x39, span._start_time, 0x41, span._end_time),
            shared.encoded or _shared_block(shared),
            b"" if request_id is None else _request_id_field(request_id),
            b""
            if not session
            else _TEXT_ATTRIBUTES.get((SESSION_ID, session)) or _text_attribute(SESSION_ID, session),
        )
    fields: list[bytes] = [  # SPAN_KIND_SERVER, the trace and span ids
        b"\x30\x02\x0a\x10",
        span._trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        span._span_id.to_bytes(8, "big"),
    ]
    trace_state = span._trace_state
    if trace_state:
        fields.append(_text(b"\x1a", ",".join(f"{k}={v}" for k, v in trace_state.items())))
    if parent is not None:
        fields += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    if name:
        fields.append(_NAMES.get(name) or _name(name))
    fields += (b"\x39", _FIXED64(span._start_time))
    end = span._end_time
    if end:
        fields += (b"\x41", _FIXED64(end))
    _span_attributes(fields, span.attribute_values())  # as the SDK's encoder reads them
    if span._events or span._links or span._dropped[0]:
        _rest(fields, span)
    fields += (
        _UNSET_STATUS if span._status is UNSET else _status(span),
        b"\x85\x01",
        _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE),
    )
    return b"".join(fields)


def _span(span: ReadableSpan) -> bytes:
    """A Span message, read through ``ReadableSpan``'s properties."""
    context = span.context
    assert context is not None  # a finished span always has one
    parent = span.parent
    fields = [_KINDS[span.kind]]
    _fields(fields, context, parent, span.name, span.start_time, span.end_time, span.attributes or _NONE)
    _rest(fields, span)
    fields += (_status(span), b"\x85\x01", _flags(parent))  # flags: field 16, fixed32
    return b"".join(fields)


# -- the request: spans grouped by resource, then by instrumentation scope ----------------------
def _resource(resource: Resource) -> bytes:
    """A ResourceSpans' fields but its spans: the resource and its schema URL."""
    fields = _field(b"\x0a", b"".join(_attributes(b"\x0a", resource.attributes)))
    return fields + _text(b"\x1a", resource.schema_url) if resource.schema_url else fields


def _scope(scope: InstrumentationScope | None) -> bytes:
    """A ScopeSpans' fields but its spans: the scope and its schema URL."""
    if scope is None:
        return _field(b"\x0a", b"")
    body = [_text(b"\x0a", scope.name)] if scope.name else []
    if scope.version:
        body.append(_text(b"\x12", scope.version))
    body += _attributes(b"\x1a", scope.attributes)
    fields = _field(b"\x0a", b"".join(body))
    return fields + _text(b"\x1a", scope.schema_url) if scope.schema_url else fields


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialised ``ExportTraceServiceRequest`` carrying ``spans``.

    Spans are grouped by resource, then by instrumentation scope, compared by their encoding:
    each distinct object is encoded once (hashing a resource would serialise its attributes).
    """
    encoded: dict[int, bytes] = {}  # id of a resource or scope object -> its fields
    groups: dict[bytes, dict[bytes, list[bytes]]] = {}
    last: tuple[Resource | None, InstrumentationScope | None, list[bytes]] = (None, None, [])
    scope: InstrumentationScope | None
    for span in spans:
        if type(span) is ServerSpan:  # its fields, read directly
            owner = span._spans
            resource, scope, body = owner.resource, owner.scope, _server_span(span)
        else:
            resource, scope, body = span.resource, span.instrumentation_scope, _span(span)
        if resource is not last[0] or scope is not last[1]:  # spans of one provider share both
            resource_key = encoded.get(id(resource))
            if resource_key is None:
                resource_key = encoded[id(resource)] = _resource(resource)
            scope_key = encoded.get(id(scope))
            if scope_key is None:
                scope_key = encoded[id(scope)] = _scope(scope)
            last = (resource, scope, groups.setdefault(resource_key, {}).setdefault(scope_key, []))
        last[2].append(_field(b"\x12", body))
    return b"".join(
        _field(
            b"\x0a",
            resource_key
            + b"".join(
                _field(b"\x12", scope_key + b"".join(encoded_spans))
                for scope_key, encoded_spans in scopes.items()
            ),
        )
        for resource_key, scopes in groups.items()
    )
