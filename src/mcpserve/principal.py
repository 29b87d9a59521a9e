"""Who is calling: the authenticated principal a request runs as."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Principal"]


@dataclass(slots=True, frozen=True)
class Principal:
    """An authenticated caller. ``key`` is what state (sessions, requestState) is bound to."""

    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    issuer: str | None = None
    client_id: str | None = None

    @property
    def key(self) -> str:
        return "|".join((self.issuer or "", self.name, self.client_id or ""))
