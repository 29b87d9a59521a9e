"""Build the authentication gate from settings: which methods, which keys, which issuer.

Part of the composition root (beside :mod:`mcpserve.runtime`): ``auth/`` itself never reads
settings. ``MCPSERVE_AUTH`` unset means "what is configured": keys if any key is, OAuth if an
issuer is. With nothing configured a loopback bind serves without authentication and says so
once; any other bind refuses to start unless ``none`` is said explicitly together with
``MCPSERVE_ALLOW_UNAUTHENTICATED=true``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

import httpx

from mcpserve.auth.authenticator import TokenAuthenticator
from mcpserve.auth.gate import AuthGate
from mcpserve.auth.introspection import Introspector
from mcpserve.auth.jwks import JwksCache
from mcpserve.auth.jwt import ASYMMETRIC_ALGORITHMS, JwtVerifier
from mcpserve.auth.keys import ApiKeyAuthenticator, load_key_file, plain_keys
from mcpserve.auth.metadata import metadata_paths, metadata_url, protected_resource_metadata
from mcpserve.config import Settings
from mcpserve.config_checks import is_loopback_host
from mcpserve.errors import ConfigError
from mcpserve.server.app import MCPServer

__all__ = ["apply_tool_scopes", "auth_methods", "build_auth_gate"]

_HTTP_TIMEOUT = httpx.Timeout(5.0)
logger = logging.getLogger("mcpserve.auth")


def auth_methods(settings: Settings) -> frozenset[str]:
    """The configured methods ({"keys"}, {"oauth"}, both, or empty: ``none`` or nothing configured)."""
    if settings.auth == "none":
        return frozenset()
    if settings.auth is not None:
        return frozenset(settings.auth.split(","))
    inferred = set()
    if settings.api_keys or settings.api_keys_file:
        inferred.add("keys")
    if settings.oauth_issuer or settings.oauth_jwks_url or settings.oauth_introspection_url:
        inferred.add("oauth")
    return frozenset(inferred)


def apply_tool_scopes(server: MCPServer, tool_scopes: dict[str, list[str]]) -> None:
    """``MCPSERVE_TOOL_SCOPES`` replaces the scopes a tool's decorator declared."""
    for name, scopes in tool_scopes.items():
        try:
            server.set_tool_scopes(name, scopes)
        except KeyError:
            raise ConfigError("MCPSERVE_TOOL_SCOPES", f"no tool named {name!r} is registered") from None


def _resource_url(settings: Settings) -> str:
    if not settings.resource_url:
        raise ConfigError(
            "MCPSERVE_RESOURCE_URL", "OAuth needs the canonical URL clients use for this server"
        )
    return settings.resource_url.rstrip("/")  # the pattern keeps '/' out of the host


def _keys(settings: Settings) -> ApiKeyAuthenticator:
    keys = plain_keys(k.get_secret_value() for k in settings.api_keys)
    if settings.api_keys_file is not None:
        keys += load_key_file(settings.api_keys_file)
    if not keys:
        raise ConfigError("MCPSERVE_API_KEYS_FILE", "MCPSERVE_AUTH includes keys but no key is configured")
    return ApiKeyAuthenticator(keys)


def _algorithms(settings: Settings) -> list[str]:
    unsafe = sorted(set(settings.oauth_algorithms) - ASYMMETRIC_ALGORITHMS)
    if unsafe or not settings.oauth_algorithms:
        raise ConfigError(
            "MCPSERVE_OAUTH_ALGORITHMS",
            f"only asymmetric algorithms are allowed ({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}); "
            f"refused: {', '.join(unsafe) or '(empty list)'}",
        )
    return list(settings.oauth_algorithms)


def _oauth(
    settings: Settings, audience: str
) -> tuple[JwtVerifier | None, Introspector | None, httpx.AsyncClient]:
    if not settings.oauth_issuer:
        raise ConfigError("MCPSERVE_OAUTH_ISSUER", "OAuth needs the issuer (authorization server) URL")
    if not settings.oauth_jwks_url and not settings.oauth_introspection_url:
        raise ConfigError(
            "MCPSERVE_OAUTH_JWKS_URL",
            "OAuth needs a JWKS URL (JWT tokens) or MCPSERVE_OAUTH_INTROSPECTION_URL",
        )
    algorithms = _algorithms(settings)
    # Tokens go only to the introspection endpoint, never elsewhere: no redirects, no env proxies.
    client = httpx.AsyncClient(timeout=_HTTP_TIMEOUT, follow_redirects=False, trust_env=False)
    jwt = introspection = None
    if settings.oauth_jwks_url:
        jwks = JwksCache(
            settings.oauth_jwks_url,
            client,
            ttl=settings.oauth_jwks_ttl,
            refresh_interval=settings.oauth_jwks_refresh_interval,
        )
        jwt = JwtVerifier(
            jwks,
            issuer=settings.oauth_issuer,
            audience=audience,
            algorithms=algorithms,
            leeway=settings.oauth_clock_skew,
        )
    if settings.oauth_introspection_url:
        secret = settings.oauth_client_secret
        introspection = Introspector(
            settings.oauth_introspection_url,
            client,
            issuer=settings.oauth_issuer,
            audience=audience,
            client_id=settings.oauth_client_id,
            client_secret=secret.get_secret_value() if secret else None,
        )
    return jwt, introspection, client


def _issuer_readiness(
    jwt: JwtVerifier | None, introspection: Introspector | None
) -> Callable[[], Awaitable[None]]:
    """Ready when every configured way of verifying tokens works: each serves some tokens (JWTs
    the JWKS, opaque ones introspection), so either failing fails requests."""

    async def check() -> None:
        if jwt is not None:
            await jwt.jwks.ready()
        if introspection is not None:
            await introspection.ready()

    return check


def _all_scopes(server: MCPServer, required: Iterable[str]) -> set[str]:
    scopes = set(required)
    for tool in server.visible_tools(None):
        scopes |= tool.scopes
    for prompt in server.visible_prompts(None):
        scopes |= prompt.scopes
    for resource in server.visible_resources(None):
        scopes |= resource.scopes
    for template in server.visible_templates(None):
        scopes |= template.scopes
    return scopes


def _allow_unauthenticated(settings: Settings) -> None:
    """No authentication: fine on loopback (with one warning unless ``none`` was said), refused elsewhere."""
    explicit = settings.auth == "none"
    if not is_loopback_host(settings.host):
        if explicit and settings.allow_unauthenticated:
            return
        remedy = (
            "set MCPSERVE_ALLOW_UNAUTHENTICATED=true to serve it open on purpose, or configure keys "
            "or OAuth (docs/auth.md)"
            if explicit
            else "set MCP_API_KEYS or MCPSERVE_API_KEYS_FILE (`mcpserve keys new`) or OAuth (docs/auth.md); "
            "to serve it open on purpose, --auth none and MCPSERVE_ALLOW_UNAUTHENTICATED=true"
        )
        refused = f"refusing to serve {settings.host} without authentication"
        raise ConfigError("MCPSERVE_AUTH", f"{refused}: {remedy}")
    if not explicit:
        logger.warning(
            "no authentication configured: serving %s without it, so any local process can call "
            "its tools; set MCP_API_KEYS (docs/auth.md), or --auth none to silence this warning",
            settings.host,
        )


def build_auth_gate(server: MCPServer, settings: Settings) -> AuthGate | None:
    """The gate for HTTP serving, or None when authentication is explicitly off."""
    methods = auth_methods(settings)
    if not methods:
        _allow_unauthenticated(settings)
        return None
    keys = _keys(settings) if "keys" in methods else None
    required = frozenset(settings.required_scopes)
    if "oauth" not in methods:
        # API keys only: no authorization server to discover, so no metadata document either.
        return AuthGate(TokenAuthenticator(keys=keys), resource_metadata_url=None, required_scopes=required)
    resource = _resource_url(settings)
    jwt, introspection, client = _oauth(settings, settings.oauth_audience or resource)
    assert settings.oauth_issuer is not None  # _oauth refused a configuration without one
    document = protected_resource_metadata(resource, [settings.oauth_issuer], _all_scopes(server, required))
    return AuthGate(
        TokenAuthenticator(keys=keys, jwt=jwt, introspection=introspection),
        resource_metadata_url=metadata_url(resource),
        required_scopes=required,
        documents=dict.fromkeys(metadata_paths(resource), document),
        close=client.aclose,
        readiness=_issuer_readiness(jwt, introspection),
    )
