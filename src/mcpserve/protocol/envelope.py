"""The 2026-07-28 per-request envelope: every request carries its own ``_meta``.

``read_request_meta`` runs the validation ladder in the order the specification gives it
(missing ``_meta`` fields → -32602, unknown version → -32022, bad optional fields → -32602) and
returns what the rest of the server needs, so nothing is inferred from earlier requests.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from mcpserve.errors import InvalidParams, UnsupportedProtocolVersion
from mcpserve.protocol.jsonrpc import is_request_id
from mcpserve.protocol.versions import MODERN_VERSIONS
from mcpserve.types import JSONObject

__all__ = [
    "PROTOCOL_VERSION_KEY",
    "CLIENT_CAPABILITIES_KEY",
    "CLIENT_INFO_KEY",
    "LOG_LEVEL_KEY",
    "SERVER_INFO_KEY",
    "SUBSCRIPTION_ID_KEY",
    "LOG_LEVELS",
    "RequestMeta",
    "read_request_meta",
    "protocol_version_of",
    "check_log_level",
    "progress_token_of",
]

PROTOCOL_VERSION_KEY: Final = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY: Final = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY: Final = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY: Final = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY: Final = "io.modelcontextprotocol/serverInfo"
SUBSCRIPTION_ID_KEY: Final = "io.modelcontextprotocol/subscriptionId"

# RFC 5424 severities, least severe first; the index is the threshold rank.
LOG_LEVELS: Final[tuple[str, ...]] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)


class RequestMeta(NamedTuple):  # a named tuple for the reason jsonrpc.Request is one
    """What one modern request says about its client."""

    protocol_version: str
    client_capabilities: JSONObject
    client_info: JSONObject | None
    log_level: str | None
    progress_token: str | int | None


def protocol_version_of(params: JSONObject) -> Any:
    """The ``_meta`` protocol version of a request, or None when it has none."""
    meta = params.get("_meta")
    return meta.get(PROTOCOL_VERSION_KEY) if isinstance(meta, dict) else None


def progress_token_of(params: JSONObject) -> str | int | None:
    """A request's ``_meta.progressToken`` if it is a valid one (2025 era: invalid means none)."""
    meta = params.get("_meta")
    token = meta.get("progressToken") if isinstance(meta, dict) else None
    return token if is_request_id(token) else None


def check_log_level(level: object) -> str:
    if not isinstance(level, str) or level not in LOG_LEVELS:
        raise InvalidParams(f"Invalid log level {level!r}; use one of: {', '.join(LOG_LEVELS)}")
    return level


def read_request_meta(params: JSONObject) -> RequestMeta:
    """Validate the envelope of a 2026-07-28 request."""
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        raise InvalidParams(
            "Missing params._meta: every 2026-07-28 request must carry "
            f"{PROTOCOL_VERSION_KEY} and {CLIENT_CAPABILITIES_KEY}"
        )
    if PROTOCOL_VERSION_KEY not in meta:
        raise InvalidParams(f"Missing _meta[{PROTOCOL_VERSION_KEY!r}]")
    capabilities = meta.get(CLIENT_CAPABILITIES_KEY)
    if not isinstance(capabilities, dict):
        raise InvalidParams(f"Missing or invalid _meta[{CLIENT_CAPABILITIES_KEY!r}]: expected an object")
    version = meta[PROTOCOL_VERSION_KEY]
    if version not in MODERN_VERSIONS:
        raise UnsupportedProtocolVersion(version, list(MODERN_VERSIONS))
    client_info = meta.get(CLIENT_INFO_KEY)
    if client_info is not None and not isinstance(client_info, dict):
        raise InvalidParams(f"Invalid _meta[{CLIENT_INFO_KEY!r}]: expected an object")
    level = meta.get(LOG_LEVEL_KEY)
    if level is not None:
        level = check_log_level(level)
    token = meta.get("progressToken")
    if token is not None and not is_request_id(token):
        raise InvalidParams("Invalid _meta.progressToken: expected a string or an integer")
    return RequestMeta(version, capabilities, client_info, level, token)
