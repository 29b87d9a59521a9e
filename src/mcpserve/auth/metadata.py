"""RFC 9728 OAuth 2.0 Protected Resource Metadata, built from configuration only.

The resource URL is configured (``MCPSERVE_RESOURCE_URL``), never derived from request headers:
a forged Host must not change which authorization server a client is sent to.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from mcpserve.types import JSONObject

__all__ = ["WELL_KNOWN", "metadata_paths", "metadata_url", "protected_resource_metadata"]

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def metadata_paths(resource_url: str) -> tuple[str, ...]:
    """The path-inserted well-known path (RFC 9728 §3.1) and the root one, which clients also try."""
    path = urlsplit(resource_url).path.rstrip("/")
    return (WELL_KNOWN + path, WELL_KNOWN) if path else (WELL_KNOWN,)


def metadata_url(resource_url: str) -> str:
    """Where the metadata for ``resource_url`` lives: the URL a challenge points clients to."""
    parts = urlsplit(resource_url)
    return f"{parts.scheme}://{parts.netloc}{metadata_paths(resource_url)[0]}"


def protected_resource_metadata(
    resource_url: str, authorization_servers: Iterable[str], scopes_supported: Iterable[str]
) -> JSONObject:
    document: JSONObject = {"resource": resource_url, "bearer_methods_supported": ["header"]}
    servers = list(authorization_servers)
    if servers:
        document["authorization_servers"] = servers
    # offline_access is the authorization server's business, never a resource's scope (MCP §17).
    scopes = sorted(set(scopes_supported) - {"offline_access"})
    if scopes:
        document["scopes_supported"] = scopes
    return document
