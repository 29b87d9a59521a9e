"""The interfaces every state backend implements. They move JSON values, not MCP semantics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from mcpserve.types import JSONObject

__all__ = ["NotificationBus"]


class NotificationBus(Protocol):
    """Fan-out of server notifications (list changes, resource updates) to every listener.

    Events are JSON-RPC notification bodies: ``{"method": ..., "params": {...}}``. A listener
    sees every event published after its ``subscribe`` context was entered, in order.
    """

    async def publish(self, event: JSONObject) -> None: ...

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[JSONObject]]: ...
