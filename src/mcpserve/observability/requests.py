"""One record per MCP endpoint request, filled in as the request is understood, then reported
once as metrics and one log line.

The transport fills the record through a context variable (``note_*``), so the layers that learn
the method, session and tool outcome need no extra parameters; outside an observed request the
``note_*`` functions do nothing.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mcpserve.observability.logs import write_event
from mcpserve.observability.metrics import Metrics
from mcpserve.observability.recent import RecentActivity
from mcpserve.principal import Principal
from mcpserve.server.call import Call
from mcpserve.types import JSONObject

if TYPE_CHECKING:
    from mcpserve.server.app import MCPServer

__all__ = [
    "RequestRecord",
    "RequestObserver",
    "current_request",
    "request_id_for",
    "note_message",
    "note_session",
    "note_call",
    "note_principal",
    "note_refused_call",
    "note_auth_failure",
    "KNOWN_METHODS",
]

# Every method either era defines; anything else is counted as "other" (bounded label values).
KNOWN_METHODS: Final = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
        "logging/setLevel",
        "subscriptions/listen",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
        "response",
        "GET",
        "POST",
        "DELETE",
        "OPTIONS",
    }
)
_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MAX_LOGGED_NAME = 200
_TOOL_FAILURE_ID: Final = re.compile(r"\(error id ([0-9a-f]{16})\)$")
# Request-line fields a client can fill with free text (a credential pasted into a tool name).
_CLIENT_TEXT: Final = ("method", "tool", "principal", "session_id")
# Fresh request ids: a random per-process prefix and a counter (unique across replicas, cheap).
_ID_PREFIX: Final = secrets.token_hex(4)
_ID_COUNTER: Final = itertools.count(1)

current_request: ContextVar[RequestRecord | None] = ContextVar("mcpserve_request", default=None)


@dataclass(slots=True)
class RequestRecord:
    """What is known about one request; ``None`` fields were never learned (e.g. a bad body)."""

    request_id: str
    started: float
    method: str
    era: str | None = None
    status: int = 0
    session_id: str | None = None
    # session_id names a session this server created: its own token, no text a client chose.
    session_issued: bool = False
    principal: str | None = None
    tool: str | None = None
    outcome: str | None = None
    tool_seconds: float | None = None
    auth_failure: str | None = None
    sse: bool = False
    error_code: int | None = None  # a JSON-RPC error answer's code
    error_id: str | None = None  # its data.errorId (an internal error's log line)
    # (trace id, span id) of the request's span when it was recorded (tracing on and sampled).
    trace: tuple[str, str] | None = None
    # Tracing on, under the HTTP transport: the request's span; or, left out of sampling, the low
    # bits of its trace id until something reads the span (see observability.tracing.RequestContext).
    span: object = None


def request_id_for(header: str | None) -> str:
    """The caller's ``X-Request-Id`` when it is a sane token, else a fresh one."""
    if header is not None and _REQUEST_ID.match(header):
        return header
    return "%s%08x" % (_ID_PREFIX, next(_ID_COUNTER))  # noqa: UP031 - cheaper than a format spec


def note_message(method: str, era: str) -> None:
    record = current_request.get()
    if record is not None:
        record.method = method
        record.era = era


def note_session(session_id: str) -> RequestRecord | None:
    """The request names this session (known or not); returns the record, to note more."""
    record = current_request.get()
    if record is not None:
        record.session_id = session_id
        record.era = "legacy"
    return record


def _outcome(response: JSONObject | None) -> str:
    if response is None:
        return "cancelled"
    if "error" in response:
        return "error"
    result = response.get("result") or {}
    if result.get("isError"):
        return "tool_error"
    if result.get("resultType") == "input_required":
        return "input_required"
    return "success"


def note_call(call: Call, response: JSONObject | None, seconds: float) -> None:
    """The dispatcher's answer to ``call`` (None: cancelled) after ``seconds`` of handling."""
    record = current_request.get()
    if record is None:
        return
    if call.principal is not None:
        record.principal = call.principal.name
    record.outcome = outcome = _outcome(response)
    if outcome != "success" and response is not None:  # the usual answer has nothing more to note
        if outcome == "error":
            _note_error(record, response["error"])
        elif outcome == "tool_error":
            _note_tool_failure(record, response["result"])
    if call.method == "tools/call":
        name = call.params.get("name")
        record.tool = name if isinstance(name, str) else ""
        record.tool_seconds = seconds


def _note_error(record: RequestRecord, error: object) -> None:
    if not isinstance(error, dict):
        return
    code, data = error.get("code"), error.get("data")
    record.error_code = code if isinstance(code, int) else None
    error_id = data.get("errorId") if isinstance(data, dict) else None
    record.error_id = error_id[:64] if isinstance(error_id, str) else None


def _note_tool_failure(record: RequestRecord, result: JSONObject) -> None:
    """A tool that raised unexpectedly reports its error id in the text (failures.tool_failure_result)."""
    content = result.get("content")
    first = content[0] if isinstance(content, list) and content else None
    text = first.get("text") if isinstance(first, dict) else None
    found = _TOOL_FAILURE_ID.search(text) if isinstance(text, str) else None
    if found is not None:
        record.error_id = found.group(1)


def _error_type(record: RequestRecord) -> str:
    """The ``error_type`` label: the JSON-RPC code for an error answer (as the OpenTelemetry MCP
    conventions say), else the outcome, else ``http_<status>`` for a refusal before dispatch."""
    if record.outcome == "error":
        return str(record.error_code) if record.error_code is not None else "error"
    if record.outcome is not None:
        return record.outcome
    return "http_%d" % record.status  # noqa: UP031 - a closed set of statuses, off the usual path


def note_principal(principal: Principal) -> None:
    """Authentication succeeded: the request is this principal's, whatever happens next."""
    record = current_request.get()
    if record is not None:
        record.principal = principal.name


def note_refused_call(method: str, era: str | None, tool: str | None, outcome: str) -> None:
    """A call refused before it ran (a rate limit), known from its headers or body only."""
    record = current_request.get()
    if record is None:
        return
    record.method = method
    if era is not None:
        record.era = era
    record.outcome = outcome
    if method == "tools/call":
        record.tool = tool if tool is not None else ""


def note_auth_failure(exc: Exception) -> None:
    """An authentication or authorization refusal, by a reason from a closed set."""
    record = current_request.get()
    if record is None:
        return
    challenge = getattr(exc, "challenge", None)
    if getattr(exc, "scopes", None) is not None:
        record.auth_failure = "insufficient_scope"
    elif challenge in ("invalid_token", "invalid_request"):
        record.auth_failure = challenge
    else:
        record.auth_failure = "missing_credentials"


class RequestObserver:
    """Turns finished request records into metrics and one JSON log line each."""

    def __init__(self, metrics: Metrics, server: MCPServer, recent: RecentActivity | None = None) -> None:
        self.metrics = metrics
        self.server = server
        self.recent = recent if recent is not None else RecentActivity()
        self.sse_open = 0
        metrics.sse_streams.set_function(lambda: self.sse_open)

    def finish(self, record: RequestRecord) -> None:
        seconds = time.perf_counter() - record.started
        logged = record.method
        name = record.tool
        outcome = record.outcome
        status = record.status
        known = logged in KNOWN_METHODS
        # No field holds free text a client chose, so masking could change nothing (see below).
        plain = known and record.principal is None and (record.session_id is None or record.session_issued)
        era = record.era or ("legacy" if logged in ("GET", "DELETE") else "unknown")
        method = logged if known else "other"
        if record.auth_failure is not None:
            self.metrics.auth_failure(record.auth_failure)
        tool = ""
        if name is not None:
            # The metrics label: a registered tool's name, else "unknown" (bounded series).
            tool = name if self.server.registered_tool(name) is not None else "unknown"
            plain = plain and tool == name
            if record.tool_seconds is not None:
                self.metrics.tool_call(tool, outcome or "error", record.tool_seconds)
            elif outcome is not None:  # refused before it ran: counted, but no duration
                self.metrics.tool_refusal(tool, outcome)
        if outcome == "success" or (outcome is None and status < 400) or outcome == "input_required":
            error_type = ""
        else:
            error_type = self._failed(record, method, tool)
        self.metrics.request(method, era, status, tool, error_type, seconds)
        fields = {
            "request_id": record.request_id,
            "era": era,
            "session_id": record.session_id,
            "principal": record.principal,
            "method": logged[:_MAX_LOGGED_NAME],
            "tool": name[:_MAX_LOGGED_NAME] if name is not None else None,
            "status": status,
            "outcome": outcome,
            # Microseconds, as milliseconds: cheaper than round() and exact to the digit shown.
            "duration_ms": int(seconds * 1_000_000) / 1000,
            # Filled in by write_event; listed so the dict is built at its final size.
            "logger": None,
            "event": None,
            "level": None,
            "timestamp": None,
        }
        if record.trace is not None:
            fields["trace_id"], fields["span_id"] = record.trace
        # Masking can change only text a client chose freely: a known method and a registered
        # tool's name (TOOL_NAME's characters) never match its patterns, so the usual line skips
        # the search.
        write_event("info", "mcpserve.request", "request", fields, () if plain else _CLIENT_TEXT)

    def _failed(self, record: RequestRecord, method: str, tool: str) -> str:
        """The console's memory of a request that did not succeed (off the usual path); returns
        its ``error_type`` label."""
        error_type = _error_type(record)
        if record.outcome == "rate_limited":  # shown with the rate limits, not among the errors
            self.metrics.rate_limited_call(record.principal, tool)
            self.recent.limited(record.principal)
            return error_type
        self.recent.error(
            record.request_id,
            record.principal,
            method,
            record.tool,
            record.status,
            error_type,
            record.error_code,
            record.error_id,
        )
        return error_type
