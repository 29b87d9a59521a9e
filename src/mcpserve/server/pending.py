"""Server→client requests awaiting the client's answer (2025 era), matched by request id.

Both transports use it: stdio keys by request id, HTTP by (session id, request id).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import anyio

from mcpserve.errors import ToolError
from mcpserve.types import JSONObject

__all__ = ["PendingRequests", "outcome"]


def outcome(method: str, answer: JSONObject | None) -> JSONObject:
    """The result of a server→client request from the client's answer (``{"result", "error"}``).

    Raises ToolError when the client refused, or never answered (``answer`` None).
    """
    if answer is None:
        raise ToolError("The client closed the connection before answering")
    error = answer.get("error")
    if error is not None:
        message = error.get("message", "error") if isinstance(error, dict) else "error"
        raise ToolError(f"The client refused {method}: {message}")
    return dict(answer.get("result") or {})


class PendingRequests:
    def __init__(self) -> None:
        self._waiting: dict[Hashable, tuple[anyio.Event, list[JSONObject]]] = {}

    async def wait(self, key: Hashable, method: str, send: Any) -> JSONObject:
        """Register ``key``, run ``send()`` (which delivers the request), then await the answer.

        Raises ToolError when the client refuses or the connection closes first.
        """
        event, slot = anyio.Event(), list[JSONObject]()
        self._waiting[key] = (event, slot)
        try:
            await send()
            await event.wait()
        finally:
            self._waiting.pop(key, None)
        return outcome(method, slot[0] if slot else None)

    def answer(self, key: Hashable, result: JSONObject | None, error: JSONObject | None) -> bool:
        """Deliver the client's response; False (and nothing done) if nobody waits for it."""
        waiting = self._waiting.get(key)
        if waiting is None:
            return False
        waiting[1].append({"result": result, "error": error})
        waiting[0].set()
        return True

    def abandon_all(self) -> None:
        """The connection is gone: every waiter fails with ToolError."""
        for event, _ in self._waiting.values():
            event.set()
