"""Checks every captured log line of the suite: valid JSON, the request fields, and no secret.

Tests register the secret values they configure (``secret(...)``); every log line captured in
process (see ``tests/conftest.py``) and from server processes the helpers start is checked
against them and against credential shapes (``Bearer ...``, URL passwords) that must never be
logged, whoever configured them.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["secret", "known_secrets", "check_log_lines", "REQUEST_FIELDS"]

REQUEST_FIELDS = frozenset(
    {"request_id", "era", "session_id", "principal", "method", "tool", "status", "duration_ms"}
)
_KNOWN: set[str] = set()
_CREDENTIAL_SHAPES = (
    re.compile(rb"(?i)bearer\s+[A-Za-z0-9._~+/-]{8,}"),
    re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@\"]*:(?!\*+@)[^@\s\"/]+@"),
)


def secret(value: str) -> str:
    """Register ``value`` as a secret that no log line may contain; returns it."""
    _KNOWN.add(value)
    return value


def known_secrets() -> frozenset[str]:
    return frozenset(_KNOWN)


def check_log_lines(data: bytes) -> list[dict[str, Any]]:
    """Parse JSON log lines, asserting the invariants every line must hold."""
    parsed = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        line = orjson.loads(raw)
        assert isinstance(line, dict), raw
        assert {"event", "level", "timestamp"} <= line.keys(), raw
        if line["event"] == "request" and line.get("logger") == "mcpserve.request":
            assert line.keys() >= REQUEST_FIELDS, raw
        for value in _KNOWN:
            assert value.encode() not in raw, f"a secret appears in a log line: {raw[:200]!r}"
        for shape in _CREDENTIAL_SHAPES:
            assert shape.search(raw) is None, f"a credential appears in a log line: {raw[:200]!r}"
        parsed.append(line)
    return parsed
