"""Server-Sent Events framing (pure)."""

from __future__ import annotations

from typing import Final

from mcpserve.server.failures import encode
from mcpserve.types import JSONObject

__all__ = ["event", "priming", "retry", "KEEPALIVE", "SSE_HEADERS"]

KEEPALIVE: Final = b": keep-alive\n\n"
# X-Accel-Buffering stops nginx from buffering the stream; no-cache keeps proxies out of it.
SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def event(message: JSONObject, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n".encode() if event_id else b""
    return head + b"event: message\ndata: " + encode(message) + b"\n\n"


def priming(event_id: str, retry_ms: int) -> bytes:
    """The first event of a resumable stream: an id to resume from and a reconnect delay."""
    return f"id: {event_id}\nretry: {retry_ms}\ndata: \n\n".encode()


def retry(retry_ms: int) -> bytes:
    """A reconnect delay on its own (no id: it must not move the client's resume position)."""
    return f"retry: {retry_ms}\n\n".encode()
