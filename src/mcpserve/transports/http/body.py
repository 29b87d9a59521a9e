"""Reading a request body under the size limit."""

from __future__ import annotations

from typing import Any

__all__ = ["read_body", "whole_body"]


def whole_body(message: dict[str, Any], limit: int) -> bytes | None:
    """The body when the first message carries all of it (b"" past ``limit``), else None.

    The usual case, answered without a coroutine of its own; :func:`read_body` does the rest.
    """
    if message["type"] != "http.request" or message.get("more_body"):
        return None
    body: bytes = message.get("body", b"")
    return body if len(body) <= limit else b""


async def read_body(receive: Any, limit: int, message: dict[str, Any] | None = None) -> bytes | None:
    """The whole body; b"" past ``limit``; None if the client went away.

    ``message`` is the first one, when the caller has received it already. A body in one
    message is :func:`whole_body`'s, on the hot path; this is for the rest.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        if message is None:
            message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b""
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)
        message = None
