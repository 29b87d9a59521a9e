"""2025-era session state as a plain, serialisable value.

A handshake-era session is data, never a live object: any replica can load it from a store,
apply a transition and write it back. The only transitions are the functions below.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mcpserve.errors import InvalidParams
from mcpserve.protocol.envelope import check_log_level
from mcpserve.protocol.versions import negotiate_legacy
from mcpserve.types import JSONObject

__all__ = ["LegacySession", "start_session"]

_FORMAT = 1  # bump when the stored shape changes; from_json refuses unknown formats


@dataclass(slots=True, frozen=True)
class LegacySession:
    protocol_version: str
    client_capabilities: JSONObject
    client_info: JSONObject
    principal: str | None = None
    initialized: bool = False
    log_level: str | None = None
    subscriptions: frozenset[str] = field(default_factory=frozenset)

    def mark_initialized(self) -> LegacySession:
        return self if self.initialized else replace(self, initialized=True)

    def with_log_level(self, level: object) -> LegacySession:
        return replace(self, log_level=check_log_level(level))

    def subscribe(self, uri: str) -> LegacySession:
        return replace(self, subscriptions=self.subscriptions | {uri})

    def unsubscribe(self, uri: str) -> LegacySession:
        return replace(self, subscriptions=self.subscriptions - {uri})

    def rebase(self, before: LegacySession, onto: LegacySession) -> LegacySession:
        """This session's changes since ``before``, applied to ``onto``: a newer version that
        another replica wrote meanwhile, so neither transition is lost (compare-and-set retry)."""
        added = self.subscriptions - before.subscriptions
        removed = before.subscriptions - self.subscriptions
        return replace(
            onto,
            initialized=onto.initialized or self.initialized,
            log_level=self.log_level if self.log_level != before.log_level else onto.log_level,
            subscriptions=(onto.subscriptions | added) - removed,
        )

    def wants(self, change: JSONObject) -> bool:
        """Whether a change notification goes to this session: list changes always, resource
        updates only for URIs it subscribed to."""
        if change["method"] != "notifications/resources/updated":
            return True
        return change["params"].get("uri") in self.subscriptions

    def to_json(self) -> JSONObject:
        return {
            "format": _FORMAT,
            "protocolVersion": self.protocol_version,
            "clientCapabilities": self.client_capabilities,
            "clientInfo": self.client_info,
            "principal": self.principal,
            "initialized": self.initialized,
            "logLevel": self.log_level,
            "subscriptions": sorted(self.subscriptions),
        }

    @classmethod
    def from_json(cls, data: Any) -> LegacySession:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("unrecognised session record")
        return cls(
            protocol_version=data["protocolVersion"],
            client_capabilities=data["clientCapabilities"],
            client_info=data["clientInfo"],
            principal=data["principal"],
            initialized=data["initialized"],
            log_level=data["logLevel"],
            subscriptions=frozenset(data["subscriptions"]),
        )


def start_session(params: JSONObject, principal: str | None) -> LegacySession:
    """Validate ``initialize`` params and create the session they describe."""
    capabilities = params.get("capabilities", {})
    client_info = params.get("clientInfo", {})
    if "protocolVersion" not in params:
        raise InvalidParams("initialize needs params.protocolVersion")
    if not isinstance(capabilities, dict) or not isinstance(client_info, dict):
        raise InvalidParams("initialize: params.capabilities and params.clientInfo must be objects")
    return LegacySession(
        protocol_version=negotiate_legacy(params["protocolVersion"]),
        client_capabilities=capabilities,
        client_info=client_info,
        principal=principal,
    )
