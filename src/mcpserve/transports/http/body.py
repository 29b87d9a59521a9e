"""Reading a request body under the size limit."""

from __future__ import annotations

from typing import Any

from mcpserve.errors import PayloadTooLarge

__all__ = ["declares_more_than", "read_body", "too_large", "whole_body"]


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Body larger than {limit} bytes")


def declares_more_than(content_length: str | None, limit: int) -> bool:
    """Whether a Content-Length declares a body over ``limit`` bytes, so it can be refused (413)
    before any of it is read. A malformed value never gets here: the HTTP parser refuses it."""
    return content_length is not None and content_length.isdigit() and int(content_length) > limit


def whole_body(message: dict[str, Any], limit: int) -> bytes | None:
    """The body when the first message carries all of it, else None; PayloadTooLarge past ``limit``.

    The usual case, answered without a coroutine of its own; :func:`read_body` does the rest.
    """
    if message["type"] != "http.request" or message.get("more_body"):
        return None
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise too_large(limit)
    return body


async def read_body(receive: Any, limit: int, message: dict[str, Any] | None = None) -> bytes | None:
    """The whole body; None if the client went away; PayloadTooLarge past ``limit``.

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
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)
        message = None
