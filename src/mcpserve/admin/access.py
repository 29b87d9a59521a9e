"""Who may open the console: a principal holding ``mcpserve:admin``, or, when authentication is
off, a browser on this machine only.

The credential is the same token the MCP endpoint accepts (an API key or an OAuth access token),
as ``Authorization: Bearer <token>`` or as the password of HTTP Basic authentication, so a
browser can log in with its own dialog (the user name is ignored). Every request also passes the
Host/Origin guard: a console on loopback must not be readable through DNS rebinding.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from mcpserve.auth.gate import AuthGate
from mcpserve.errors import Forbidden, ProtocolError, Unauthorized
from mcpserve.principal import Principal
from mcpserve.transports.http.hostguard import HostGuard

__all__ = ["ADMIN_SCOPE", "AdminAccess", "Allowed", "Denied"]

ADMIN_SCOPE: Final = "mcpserve:admin"
# Basic lets a browser ask for the token with its own dialog; Bearer is for scripts.
_CHALLENGES: Final = (
    (b"www-authenticate", b'Bearer realm="mcpserve admin", scope="mcpserve:admin"'),
    (b"www-authenticate", b'Basic realm="mcpserve admin", charset="UTF-8"'),
)


@dataclass(slots=True, frozen=True)
class Allowed:
    principal: Principal | None  # None: authentication is off and the caller is local


@dataclass(slots=True, frozen=True)
class Denied:
    status: int
    message: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


def _loopback(peer: str | None) -> bool:
    try:
        return peer is not None and ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def _basic_password(value: str) -> str | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, separator, password = decoded.partition(":")
    return password if separator and password else None


class AdminAccess:
    def __init__(self, gate: AuthGate | None, guard: HostGuard) -> None:
        self.gate = gate
        self.guard = guard

    async def decide(
        self, headers: Mapping[str, str], peer: str | None, query_string: bytes
    ) -> Allowed | Denied:
        verdict = self.guard.check(
            headers.get("host"), headers.get("origin"), headers.get("x-forwarded-host"), peer
        )
        if verdict.status:
            return Denied(verdict.status, verdict.reason)
        if self.gate is None:
            # A request relayed by a proxy is not local, whatever the proxy's own address.
            if _loopback(peer) and "x-forwarded-for" not in headers and "forwarded" not in headers:
                return Allowed(None)
            return Denied(403, "The console is open to loopback clients only while authentication is off")
        return await self._authenticated(self.gate, headers, query_string)

    async def _authenticated(
        self, gate: AuthGate, headers: Mapping[str, str], query_string: bytes
    ) -> Allowed | Denied:
        scheme, _, value = headers.get("authorization", "").strip().partition(" ")
        try:
            if scheme.lower() == "basic":
                password = _basic_password(value)
                if password is None:
                    raise Unauthorized("Malformed Basic credentials", "invalid_request")
                headers = {"authorization": "Bearer " + password}  # the same checks as a Bearer token
            token = gate.bearer_token(headers, query_string)
            principal = await gate.authenticator.authenticate(token)
            if not principal.has_scopes((ADMIN_SCOPE,)):
                raise Forbidden("The console needs the mcpserve:admin scope", frozenset({ADMIN_SCOPE}))
        except Unauthorized as exc:
            return Denied(401, exc.message, _CHALLENGES)
        except Forbidden as exc:
            return Denied(403, exc.message)
        except ProtocolError as exc:  # the token issuer is unreachable
            return Denied(exc.http_status, exc.message)
        return Allowed(principal)
