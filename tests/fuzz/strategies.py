"""Hypothesis strategies for what a hostile or broken client can send: bytes, near-valid JSON-RPC
messages and header combinations, and the checks every answer must pass. Shared by the HTTP and
stdio fuzz tests and by ``python -m bench.fuzz``."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from mcpserve.protocol.envelope import CLIENT_CAPABILITIES_KEY, PROTOCOL_VERSION_KEY
from mcpserve.protocol.versions import LEGACY_VERSIONS, MODERN


def fuzz(examples: int) -> settings:
    """Reproducible in CI: the same examples every run, no example database on disk, no deadline
    (one slow example on a loaded CI machine is not a failure)."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=True)


METHODS = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "completion/complete",
    "logging/setLevel",
    "server/discover",
    "subscriptions/listen",
    "notifications/initialized",
    "notifications/cancelled",
]
TOOLS = ["echo", "forecast", "weather", "fails"]
VALID_SESSION = "<valid session>"
# Every status the endpoint may answer (docs/errors.md); 503 only while draining or full.
DOCUMENTED_STATUSES = frozenset(
    {200, 202, 400, 401, 403, 404, 405, 406, 409, 413, 415, 421, 429, 503}
)  # a header value the driver replaces with a live session's id
VERSIONS = [MODERN, *LEGACY_VERSIONS]


def _text() -> st.SearchStrategy[str]:
    return st.text(max_size=12)


# Any JSON value, nested a few levels; integers beyond 64 bits included.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text(), children, max_size=3),
    max_leaves=4,
)


_META: dict[str, Any] = {PROTOCOL_VERSION_KEY: MODERN, CLIENT_CAPABILITIES_KEY: {}}
_INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "0"}}

# Valid messages of every kind; the fuzz breaks them in a few places each (cheaper to generate
# than free-form dictionaries, and closer to what a buggy client really sends).
TEMPLATES: list[dict[str, Any]] = [
    {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": _META}},
    {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}, "_meta": _META},
    },
    {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "forecast", "arguments": {"region": "north"}, "_meta": _META},
    },
    {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "tools/call",
        "params": {"name": "weather", "arguments": {"city": "Oslo"}, "_meta": _META},
    },
    {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "fails", "arguments": {}, "_meta": _META},
    },
    {
        "jsonrpc": "2.0",
        "id": 6,
        "method": "resources/read",
        "params": {"uri": "test://items/7", "_meta": _META},
    },
    {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "prompts/get",
        "params": {"name": "review", "arguments": {"code": "x"}, "_meta": _META},
    },
    {"jsonrpc": "2.0", "id": 8, "method": "server/discover", "params": {"_meta": _META}},
    {
        "jsonrpc": "2.0",
        "id": 9,
        "method": "completion/complete",
        "params": {
            "ref": {"type": "ref/prompt", "name": "review"},
            "argument": {"name": "code", "value": "x"},
            "_meta": _META,
        },
    },
    {"jsonrpc": "2.0", "id": 10, "method": "resources/list", "params": {"cursor": "abc", "_meta": _META}},
    {"jsonrpc": "2.0", "id": 11, "method": "initialize", "params": _INIT},
    {"jsonrpc": "2.0", "id": 12, "method": "ping"},
    {
        "jsonrpc": "2.0",
        "id": 13,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "legacy"}},
    },
    {"jsonrpc": "2.0", "id": 14, "method": "logging/setLevel", "params": {"level": "debug"}},
    {"jsonrpc": "2.0", "id": 15, "method": "resources/subscribe", "params": {"uri": "test://readme"}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}},
    {"jsonrpc": "2.0", "id": "mcpserve-1", "result": {"action": "accept", "content": {}}},
    {"jsonrpc": "2.0", "id": "mcpserve-2", "error": {"code": -1, "message": "no"}},
]


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


_DELETE = object()
_replacements: st.SearchStrategy[Any] = st.one_of(
    st.just(_DELETE),
    json_values,
    st.sampled_from([2**63, -(2**64), 1.5, True, None, "", "\u202e\U0001f600", "\ud800", [], {}]),
    st.sampled_from(METHODS),
    st.sampled_from(VERSIONS),
    st.integers(min_value=1, max_value=300).map(_deep),
)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a message, so a mutation can pick one by index."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        keys = list(item) if isinstance(item, dict) else range(len(item)) if isinstance(item, list) else []
        for key in keys:
            found.append((item, key))
            stack.append(item[key])
    return found


def _mutate(template: dict[str, Any], edits: list[tuple[int, Any]]) -> Any:
    message = json.loads(json.dumps(template))
    for where, replacement in edits:
        slots = _slots(message)
        if not slots:
            return replacement if replacement is not _DELETE else message
        container, key = slots[where % len(slots)]
        if replacement is _DELETE:
            del container[key]
        else:
            container[key] = replacement
    return message


messages: st.SearchStrategy[Any] = st.builds(
    _mutate,
    st.sampled_from(TEMPLATES),
    st.lists(st.tuples(st.integers(min_value=0, max_value=63), _replacements), max_size=3),
)


def _nested(depth: int) -> bytes:
    return (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":'
        + (b"[" * depth + b"]" * depth)
        + b"}}}"
    )


def _encode(value: Any, ascii_only: bool) -> bytes:
    # Lone surrogates reach the server as \ud800 escapes or, unescaped, as invalid UTF-8.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


bodies: st.SearchStrategy[bytes] = st.one_of(
    st.builds(_encode, messages, st.booleans()),
    st.builds(_encode, st.lists(messages, max_size=2), st.booleans()),
    st.builds(_encode, json_values, st.booleans()),
    st.integers(min_value=200, max_value=1200).map(_nested),
    st.binary(max_size=64),
    st.builds(lambda message, cut: _encode(message, True)[:cut], messages, st.integers(0, 40)),
)


def header_values(*likely: str) -> st.SearchStrategy[str]:
    """Plausible values first, then anything a header can carry (latin-1, as ASGI delivers it)."""
    anything = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=20)
    return st.sampled_from(likely) | anything if likely else anything


header_sets = st.fixed_dictionaries(
    {
        "host": header_values("127.0.0.1:8000", "localhost", "evil.example", "[::1]:8000"),
        "accept": header_values(
            "application/json, text/event-stream", "*/*", "text/event-stream", "application/json"
        ),
        "content-type": header_values("application/json", "application/json; charset=utf-8", "text/plain"),
    },
    optional={
        "origin": header_values("http://localhost:3000", "https://evil.example", "null"),
        "mcp-protocol-version": header_values(*VERSIONS),
        "mcp-method": header_values(*METHODS, "=?base64?dG9vbHMvY2FsbA==?=", "=?base64?!!?="),
        "mcp-name": header_values(*TOOLS, "test://readme", "=?base64?ZWNobw==?="),
        "mcp-param-region": header_values("north", "=?base64?bm9ydGg=?="),
        "mcp-session-id": header_values(VALID_SESSION, "unknown-session"),
        "last-event-id": header_values("0", "abc:1"),
        "content-length": header_values("0", "12"),
    },
)


def headers_for(message: Any, era: str) -> dict[str, str | None]:
    """The headers a correct client would send with ``message`` in ``era``."""
    headers: dict[str, str | None] = {
        "host": "127.0.0.1:8000",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    if era == "legacy":
        return {**headers, "mcp-session-id": VALID_SESSION, "mcp-protocol-version": "2025-11-25"}
    headers["mcp-protocol-version"] = MODERN
    if not isinstance(message, dict):
        return headers
    if isinstance(message.get("method"), str):
        headers["mcp-method"] = message["method"]
    params = message.get("params")
    if isinstance(params, dict):
        name = params.get("name", params.get("uri"))
        if isinstance(name, str):
            headers["mcp-name"] = name
        arguments = params.get("arguments")
        if isinstance(arguments, dict) and isinstance(arguments.get("region"), str):
            headers["mcp-param-region"] = arguments["region"]
    return headers


header_edits = st.lists(
    st.tuples(
        st.sampled_from(
            ["mcp-method", "mcp-name", "mcp-param-region", "mcp-protocol-version", "mcp-session-id"]
        ),
        st.none() | header_values(*METHODS, *VERSIONS, VALID_SESSION),
    ),
    max_size=1,
)


def check_jsonrpc(message: Any) -> None:
    assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", message
    if "method" in message:
        assert isinstance(message["method"], str)
        return
    assert ("result" in message) != ("error" in message), message
    assert message["id"] is None or isinstance(message["id"], str | int)
    if "error" in message:
        error = message["error"]
        assert isinstance(error["code"], int) and isinstance(error["message"], str), error
        assert error["code"] != -32603 or set(error.get("data", {})) == {"errorId"}
    else:
        assert isinstance(message["result"], dict)
