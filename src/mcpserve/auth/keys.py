"""Static API keys: stored and compared as SHA-256 digests, in constant time, never logged.

Keys come from a TOML file (a mounted secret, ``MCPSERVE_API_KEYS_FILE``) holding one table per
key, and from ``MCP_API_KEYS`` (plain keys, each its own principal with every scope)::

    [[keys]]
    principal = "deploy-bot"
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    scopes = ["deployments:read", "deployments:write"]
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcpserve.errors import ConfigError
from mcpserve.principal import Principal
from mcpserve.tomlfile import read_toml

__all__ = [
    "API_KEY_ISSUER",
    "ApiKey",
    "ApiKeyAuthenticator",
    "generate_key",
    "hash_key",
    "load_key_file",
    "plain_keys",
]

# Principals from API keys live in their own namespace: an OAuth subject of the same name is
# someone else (Principal.key includes the issuer).
API_KEY_ISSUER = "urn:mcpserve:api-key"
_FILE_VARIABLE = "MCPSERVE_API_KEYS_FILE"
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which a key is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    """A new key: 256 random bits, URL-safe, with a prefix that secret scanners can recognise."""
    return "mcps_" + secrets.token_urlsafe(32)


@dataclass(slots=True, frozen=True)
class ApiKey:
    digest: bytes
    principal: Principal

    def __repr__(self) -> str:  # the digest is not the key, but keep it out of logs all the same
        return f"ApiKey(principal={self.principal.name!r})"


def _file_entry(label: str, entry: Any) -> ApiKey:
    if not isinstance(entry, dict):
        raise ConfigError(_FILE_VARIABLE, f"{label}: must be a table")
    unknown = sorted(set(entry) - {"principal", "sha256", "scopes"})
    if unknown:
        raise ConfigError(_FILE_VARIABLE, f"{label}: unknown fields {', '.join(unknown)}")
    name, digest, scopes = entry.get("principal"), entry.get("sha256"), entry.get("scopes", [])
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(_FILE_VARIABLE, f"{label}: principal must be a non-empty string")
    if not isinstance(digest, str) or not _HEX_DIGEST.match(digest.lower()):
        raise ConfigError(_FILE_VARIABLE, f"{label}: sha256 must be 64 hex digits (see `mcpserve keys new`)")
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
        raise ConfigError(_FILE_VARIABLE, f"{label}: scopes must be a list of strings")
    principal = Principal(name.strip(), frozenset(scopes), issuer=API_KEY_ISSUER)
    return ApiKey(bytes.fromhex(digest.lower()), principal)


def load_key_file(path: Path) -> list[ApiKey]:
    """Keys from a TOML file with ``[[keys]]`` entries (or ``[keys.<label>]`` tables)."""
    data = read_toml(path, _FILE_VARIABLE)
    tables = data.get("keys", [])
    if isinstance(tables, dict):
        entries = [(f"keys.{label}", entry) for label, entry in tables.items()]
    elif isinstance(tables, list):
        entries = [(f"keys[{index}]", entry) for index, entry in enumerate(tables)]
    else:
        raise ConfigError(_FILE_VARIABLE, f"{path}: 'keys' must be an array of tables")
    return [_file_entry(label, entry) for label, entry in entries]


def plain_keys(keys: Iterable[str]) -> list[ApiKey]:
    """``MCP_API_KEYS``: each key is its own principal (named by a digest prefix) with every scope."""
    found = []
    for key in keys:
        digest = hashlib.sha256(key.encode()).digest()
        name = "api-key-" + digest.hex()[:12]
        found.append(ApiKey(digest, Principal(name, issuer=API_KEY_ISSUER, all_scopes=True)))
    return found


class ApiKeyAuthenticator:
    """Looks a presented key up by digest, comparing against every stored digest in constant time."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        digests = [key.digest for key in keys]
        if len(set(digests)) != len(digests):
            raise ConfigError(_FILE_VARIABLE, "the same key is configured twice")
        self._keys = tuple(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for key in self._keys:  # no early exit: the time taken says nothing about which key matched
            if hmac.compare_digest(key.digest, digest):
                found = key.principal
        return found
