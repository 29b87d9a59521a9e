"""DNS-rebinding defence: Host and Origin allowlists, with X-Forwarded-* only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["HostGuard", "Verdict"]

_MEMO_SIZE = 1024
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bind_names(bind_host: str | None) -> frozenset[str]:
    """The Host value naming a specific bind address (0.0.0.0 and :: name no host)."""
    if not bind_host or bind_host in ("0.0.0.0", "::"):  # noqa: S104 - names, not binds
        return frozenset()
    name = bind_host.lower()
    return frozenset({f"[{name}]" if ":" in name and not name.startswith("[") else name})


@dataclass(slots=True, frozen=True)
class Verdict:
    status: int  # 0 when allowed
    reason: str = ""


class HostGuard:
    """Decides whether a request's Host and Origin may reach the server."""

    def __init__(
        self,
        allowed_hosts: Iterable[str],
        allowed_origins: Iterable[str],
        trusted_proxies: Iterable[str],
        *,
        bind_host: str | None = None,
    ):
        hosts = {h.strip().lower() for h in allowed_hosts if h.strip()}
        self.any_host = "*" in hosts
        # With nothing configured only loopback names pass (safe for a laptop, explicit for
        # production), plus the address the server is bound to when that is a specific one.
        self.hosts = frozenset(_hostname(h) for h in hosts) or _LOOPBACK_NAMES | _bind_names(bind_host)
        origins = {o.strip().lower().rstrip("/") for o in allowed_origins if o.strip()}
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)
        # The same few Host/Origin pairs arrive on every request; remember their verdicts.
        self._seen: dict[tuple[str | None, str | None], Verdict] = {}
        self.proxies = tuple(
            ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies if p.strip()
        )

    def trusts(self, client: str | None) -> bool:
        if not client or not self.proxies:
            return False
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def client_address(self, forwarded_for: str | None, peer: str | None) -> str | None:
        """The client's address: behind trusted proxies, the nearest X-Forwarded-For hop they did not add.

        Walking from the right skips only hops our own proxies appended, so a client cannot pick
        its address by sending its own X-Forwarded-For.
        """
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer

    def check(
        self, host: str | None, origin: str | None, forwarded_host: str | None, client: str | None
    ) -> Verdict:
        effective = forwarded_host.split(",")[0] if forwarded_host and self.trusts(client) else host
        key = (effective, origin)
        verdict = self._seen.get(key)
        if verdict is None:
            if len(self._seen) >= _MEMO_SIZE:  # bounded: varying Host headers cannot grow it
                self._seen.clear()
            verdict = self._seen[key] = self._decide(effective, origin)
        return verdict

    def _decide(self, effective: str | None, origin: str | None) -> Verdict:
        if not self.any_host and (effective is None or _hostname(effective) not in self.hosts):
            return Verdict(421, "Host not allowed")
        if origin is not None and not self._origin_ok(origin):
            return Verdict(403, "Origin not allowed")
        return Verdict(0)

    def _origin_ok(self, origin: str) -> bool:
        origin = origin.strip().lower().rstrip("/")
        if self.any_origin or origin in self.origins:
            return True
        if self.origins:
            return False
        # Default: browsers on this machine only.
        return _hostname(urlsplit(origin).netloc) in _LOOPBACK_NAMES
