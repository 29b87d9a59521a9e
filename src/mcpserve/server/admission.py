"""The seam transports use to ask whether a call may run now (rate and concurrency limits).

Transports depend on this protocol only; the policy behind it is wired in the composition root.
"""

from __future__ import annotations

from typing import Protocol

from mcpserve.errors import ProtocolError
from mcpserve.principal import Principal

__all__ = ["Admission", "CallGate", "caller_key"]


class Admission(Protocol):
    """The answer for one call. Release it when the call ends (it may hold a concurrency slot)."""

    @property
    def error(self) -> ProtocolError | None: ...

    def headers(self) -> list[tuple[bytes, bytes]]: ...

    def release(self) -> None: ...


class CallGate(Protocol):
    async def admit(self, caller: str, tool: str | None) -> Admission:
        """Admit one ``tools/call`` of ``tool`` (None: unknown yet) by ``caller``."""
        ...


def caller_key(principal: Principal | None, address: str | None) -> str:
    """Who a limit applies to: the authenticated principal, else the client's address."""
    if principal is not None:
        return "principal:" + principal.key
    return "address:" + (address or "unknown")
