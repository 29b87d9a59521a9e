"""Pure header rules for the MCP endpoint: Accept, era routing, and 2026-07-28 header checks.

HTTP statuses for errors live in :mod:`mcpserve.server.failures`.

Headers are case-insensitive by name and case-sensitive by value; optional whitespace around
values is trimmed; ``=?base64?...?=`` values are decoded before comparing (SEP-2243).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from typing import Any, Final

from mcpserve.errors import HeaderMismatch
from mcpserve.protocol.envelope import PROTOCOL_VERSION_KEY
from mcpserve.protocol.versions import MODERN
from mcpserve.types import JSONObject

__all__ = [
    "accepts",
    "decode_header_value",
    "is_json",
    "is_modern",
    "check_modern_headers",
]

_SENTINEL = re.compile(r"^=\?base64\?(.*)\?=$", re.DOTALL)
_NAMED: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


@functools.lru_cache(maxsize=64)
def _media_types(accept: str) -> frozenset[str]:
    return frozenset(part.split(";")[0].strip().lower() for part in accept.split(","))


def accepts(accept: str, *types: str) -> bool:
    """Whether an Accept header lists every one of ``types`` (``*/*`` counts for all)."""
    listed = _media_types(accept)
    return "*/*" in listed or listed.issuperset(types)


@functools.lru_cache(maxsize=64)
def is_json(content_type: str) -> bool:
    """Whether a Content-Type names application/json (parameters such as charset allowed)."""
    return content_type.split(";", maxsplit=1)[0].strip().lower() == "application/json"


def decode_header_value(raw: str) -> str:
    value = raw.strip()
    if not value.startswith("=?"):
        return value
    match = _SENTINEL.match(value)
    if match is None:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise HeaderMismatch("Malformed base64 in a =?base64?...?= header value") from None


def is_modern(headers: Mapping[str, str], method: str | None, params: JSONObject) -> bool:
    """Route a POST: 2026-07-28 when its header or its ``_meta`` envelope says so, unless it
    belongs to a 2025-era session."""
    if "mcp-session-id" in headers:
        return False
    header = headers.get("mcp-protocol-version", "").strip()
    if header == MODERN:
        return True
    if method == "initialize":
        return False
    meta = params.get("_meta")
    return isinstance(meta, dict) and PROTOCOL_VERSION_KEY in meta


def _same(header_value: str, body_value: Any) -> bool:
    if isinstance(body_value, bool):
        return header_value == ("true" if body_value else "false")
    if isinstance(body_value, int):
        try:
            return int(header_value) == body_value
        except ValueError:
            return False
    return isinstance(body_value, str) and header_value == body_value


def check_modern_headers(
    headers: Mapping[str, str], method: str, params: JSONObject, tool_schema: JSONObject | None
) -> None:
    """Raise HeaderMismatch (-32020) unless the request headers agree with the body."""
    meta_version = params["_meta"][PROTOCOL_VERSION_KEY]
    if headers.get("mcp-protocol-version", "").strip() != meta_version:
        raise HeaderMismatch("MCP-Protocol-Version header must equal _meta protocolVersion")
    declared = headers.get("mcp-method")
    if declared is None:
        raise HeaderMismatch("Missing Mcp-Method header")
    if decode_header_value(declared) != method:
        raise HeaderMismatch("Mcp-Method header does not match the body's method")
    field = _NAMED.get(method)
    if field is not None:
        name = headers.get("mcp-name")
        if name is None:
            raise HeaderMismatch(f"Missing Mcp-Name header (required for {method})")
        if decode_header_value(name) != params.get(field):
            raise HeaderMismatch(f"Mcp-Name header does not match params.{field}")
    if tool_schema is not None:
        marked = _header_params(tool_schema)
        if marked:
            _check_param_headers(headers, params.get("arguments"), marked)


# Input schema object -> (that schema, its (argument, header) pairs). Holding the schema keeps its
# id from being reused while memoised; a served tool's schema does not change.
_HEADER_PARAMS: dict[int, tuple[JSONObject, tuple[tuple[str, str], ...]]] = {}


def _header_params(schema: JSONObject) -> tuple[tuple[str, str], ...]:
    """The arguments a tool's input schema marks with ``x-mcp-header``, and their header names."""
    found = _HEADER_PARAMS.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    properties = schema.get("properties") or {}
    marked = tuple(
        (name, prop["x-mcp-header"])
        for name, prop in properties.items()
        if isinstance(prop, dict) and isinstance(prop.get("x-mcp-header"), str)
    )
    if len(_HEADER_PARAMS) >= 1024:  # bounded, whatever registers tools at run time
        _HEADER_PARAMS.clear()
    _HEADER_PARAMS[id(schema)] = (schema, marked)
    return marked


def _check_param_headers(
    headers: Mapping[str, str], arguments: Any, marked: tuple[tuple[str, str], ...]
) -> None:
    arguments = arguments if isinstance(arguments, dict) else {}
    for name, header in marked:
        value = arguments.get(name)
        key = f"mcp-param-{header.lower()}"
        if value is None:
            continue
        if key not in headers:
            raise HeaderMismatch(f"Missing Mcp-Param-{header} header for argument {name!r}")
        if not _same(decode_header_value(headers[key]), value):
            raise HeaderMismatch(f"Mcp-Param-{header} header does not match argument {name!r}")
