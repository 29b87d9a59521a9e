"""Wire-level envelopes for 2026-07-28 requests and 2025-era handshakes, as clients send them."""

from __future__ import annotations

from typing import Any

from mcpserve.protocol.envelope import (
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    LOG_LEVEL_KEY,
    PROTOCOL_VERSION_KEY,
)
from mcpserve.protocol.versions import MODERN
from mcpserve.types import JSONObject


def modern_meta(
    capabilities: JSONObject | None = None,
    *,
    version: str = MODERN,
    log_level: str | None = None,
    progress_token: str | int | None = None,
) -> JSONObject:
    """A valid 2026-07-28 ``_meta`` envelope."""
    meta: JSONObject = {
        PROTOCOL_VERSION_KEY: version,
        CLIENT_CAPABILITIES_KEY: capabilities if capabilities is not None else {},
        CLIENT_INFO_KEY: {"name": "mcpserve-tests", "version": "0"},
    }
    if log_level is not None:
        meta[LOG_LEVEL_KEY] = log_level
    if progress_token is not None:
        meta["progressToken"] = progress_token
    return meta


def modern_request(
    request_id: int | str, method: str, params: JSONObject | None = None, **meta: Any
) -> JSONObject:
    """A complete 2026-07-28 JSON-RPC request with a valid envelope."""
    body: JSONObject = dict(params or {})
    body["_meta"] = modern_meta(**meta)
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": body}


def initialize_request(
    request_id: int | str = 0, version: str = "2025-11-25", **capabilities: Any
) -> JSONObject:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": capabilities,
            "clientInfo": {"name": "mcpserve-tests", "version": "0"},
        },
    }
