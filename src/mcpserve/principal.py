"""Who is calling: the authenticated principal a request runs as."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Principal"]


@dataclass(slots=True, frozen=True)
class Principal:
    """An authenticated caller. ``key`` is what state (sessions, requestState) is bound to.

    ``all_scopes`` grants every scope, including ones added later (plain ``MCP_API_KEYS``): an
    explicit wildcard instead of a snapshot of the scopes known at start.
    """

    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    issuer: str | None = None
    client_id: str | None = None
    all_scopes: bool = False

    @property
    def key(self) -> str:
        return "|".join((self.issuer or "", self.name, self.client_id or ""))

    def has_scopes(self, required: Iterable[str]) -> bool:
        return self.all_scopes or self.scopes.issuperset(required)
