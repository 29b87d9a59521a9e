"""Settings: built once at the edge from ``MCPSERVE_*`` variables and an optional TOML file.

This is the only module that reads the environment. Precedence, highest first: command-line
flags, environment variables, the TOML file (``--config`` / ``MCPSERVE_CONFIG``), defaults.
Variable names are fixed so deployments can rely on them; a few unprefixed names from the
seed guides (``PORT``, ``LOG_LEVEL``, ...) are accepted as aliases.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mcpserve.config_checks import (
    check_bearer_tokens,
    check_http_url,
    check_network,
    check_origin,
    cross_checks,
)
from mcpserve.config_sources import read_secret_file, service_links
from mcpserve.errors import ConfigError
from mcpserve.gateway.config import DEFAULT_CHILD_ENV, HeaderSource, UpstreamSpec
from mcpserve.tomlfile import read_toml
from mcpserve.urls import MASK, redact_url

__all__ = [
    "Settings",
    "ToolRateLimit",
    "load_settings",
    "parse_key_values",
    "read_toml",
    "ENV_PREFIX",
    "child_environment",
    "header_values",
]

ENV_PREFIX = "MCPSERVE_"
# MCPSERVE_ variables that are not settings: the config file itself, the Node tools folder of
# scripts/node-tools.sh, and the test suite's own (MCPSERVE_TEST_*). Any other unknown one is a
# typo that would otherwise be silently ignored.
_NOT_SETTINGS = frozenset({ENV_PREFIX + "CONFIG", ENV_PREFIX + "TOOLS_DIR"})
_TEST_PREFIX = ENV_PREFIX + "TEST_"
# Plain API keys are bearer secrets: a short one can be guessed. `mcpserve keys new` makes 48 characters.
MIN_API_KEY_LENGTH = 16


def _env(name: str, *aliases: str) -> AliasChoices:
    # Field names themselves are not env aliases: PATH or HOST must never configure us.
    return AliasChoices(ENV_PREFIX + name.upper(), *aliases)


def _split(value: Any) -> Any:
    # Commas, or one item per line (the natural form of a list in a secret file).
    if isinstance(value, str):
        return [item.strip() for item in re.split(r"[,\n]", value) if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]
SecondsByName = Annotated[dict[str, PositiveFloat], NoDecode]  # a JSON object in the environment


class ToolRateLimit(BaseModel):
    """One entry of ``MCPSERVE_TOOL_RATE_LIMITS``; 0 or absent means no limit of that kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_minute: int = Field(0, ge=0)
    per_hour: int = Field(0, ge=0)
    concurrency: int = Field(0, ge=0)


# What a JSON-valued setting that is not JSON gets told.
_BAD_JSON = {
    "tool_timeouts": 'must be a JSON object, e.g. {"tool_name": 30}',
    "tool_rate_limits": 'not JSON; expected {"tool": {"per_minute": n, ...}}',
    "tool_scopes": 'not JSON; expected {"tool": ["scope", ...]}',
}


class Settings(BaseSettings):
    """Every runtime setting. Field ``x`` is read from ``MCPSERVE_X`` (and ``x`` in the TOML file)."""

    model_config = SettingsConfigDict(
        frozen=True,
        populate_by_name=True,
        extra="forbid",
        case_sensitive=False,
        env_prefix=ENV_PREFIX,
    )

    # Serving
    transport: Literal["stdio", "http"] = Field("http", validation_alias=_env("transport"))
    host: str = Field("127.0.0.1", validation_alias=_env("host"))
    port: int = Field(8000, ge=0, le=65535, validation_alias=_env("port", "PORT"))
    path: str = Field("/mcp", pattern=r"^/[A-Za-z0-9._~/-]*$", validation_alias=_env("path"))
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", validation_alias=_env("log_level", "LOG_LEVEL")
    )

    # HTTP edge
    allowed_hosts: CommaList = Field(default_factory=list, validation_alias=_env("allowed_hosts"))
    allowed_origins: CommaList = Field(default_factory=list, validation_alias=_env("allowed_origins"))
    trusted_proxies: CommaList = Field(default_factory=list, validation_alias=_env("trusted_proxies"))
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, validation_alias=_env("max_body_bytes"))

    # Connections: what a client may hold before its request is read, and the drain's pre-stop
    # delay (see docs/configuration.md, "Connection limits" and "Shutdown")
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, le=16 * 1024 * 1024, validation_alias=_env("max_header_bytes")
    )
    header_timeout: float = Field(10.0, gt=0, le=3600, validation_alias=_env("header_timeout"))
    body_timeout: float = Field(30.0, gt=0, le=3600, validation_alias=_env("body_timeout"))
    # Above the idle timeouts proxies keep upstream connections for (nginx, AWS ALB: 60 s), so the
    # proxy, not the replica, closes an idle one and never sends on a connection being closed.
    keepalive_timeout: float = Field(75.0, gt=0, le=3600, validation_alias=_env("keepalive_timeout"))
    # Unset: 7/8 of the process's open-file limit, so the cap trips before accept() fails.
    max_connections: int | None = Field(None, ge=1, validation_alias=_env("max_connections"))
    drain_delay: float = Field(0.0, ge=0, le=3600, validation_alias=_env("drain_delay"))

    # Authentication ("keys", "oauth", "keys,oauth" or "none"; unset: inferred from what is
    # configured, and HTTP refuses to start when nothing is). See docs/auth.md.
    auth: str | None = Field(
        None, pattern=r"^(none|keys|oauth|keys,oauth|oauth,keys)$", validation_alias=_env("auth")
    )
    allow_unauthenticated: bool = Field(False, validation_alias=_env("allow_unauthenticated"))
    api_keys_file: Path | None = Field(None, validation_alias=_env("api_keys_file"))
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, validation_alias=_env("api_keys", "MCP_API_KEYS")
    )
    resource_url: str | None = Field(
        None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$", validation_alias=_env("resource_url")
    )
    required_scopes: CommaList = Field(default_factory=list, validation_alias=_env("required_scopes"))
    tool_scopes: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("tool_scopes")
    )
    oauth_issuer: str | None = Field(None, validation_alias=_env("oauth_issuer"))
    oauth_jwks_url: str | None = Field(None, validation_alias=_env("oauth_jwks_url"))
    oauth_audience: str | None = Field(None, validation_alias=_env("oauth_audience"))
    oauth_introspection_url: str | None = Field(None, validation_alias=_env("oauth_introspection_url"))
    oauth_client_id: str | None = Field(None, validation_alias=_env("oauth_client_id"))
    oauth_client_secret: SecretStr | None = Field(None, validation_alias=_env("oauth_client_secret"))
    oauth_algorithms: CommaList = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"],
        validation_alias=_env("oauth_algorithms"),
    )
    oauth_clock_skew: int = Field(30, ge=0, le=300, validation_alias=_env("oauth_clock_skew"))
    oauth_jwks_ttl: float = Field(300.0, gt=0, validation_alias=_env("oauth_jwks_ttl"))
    oauth_jwks_refresh_interval: float = Field(
        10.0, ge=0, validation_alias=_env("oauth_jwks_refresh_interval")
    )

    # 2025-era sessions
    max_sessions: int = Field(10_000, ge=1, validation_alias=_env("max_sessions"))
    session_idle_timeout: float = Field(1800.0, gt=0, validation_alias=_env("session_idle_timeout"))

    # Shared state for replicas (docs/scaling.md): where 2025-era sessions, their events and the
    # message bus live. Unset: redis when MCPSERVE_REDIS_URL is set, else memory.
    state: Literal["memory", "redis"] | None = Field(None, validation_alias=_env("state"))
    state_prefix: str = Field(
        "mcpserve:st:", min_length=1, pattern=r"^[^{}]+$", validation_alias=_env("state_prefix")
    )
    max_sessions_per_principal: int = Field(1000, ge=1, validation_alias=_env("max_sessions_per_principal"))
    session_max_events: int = Field(256, ge=1, le=100_000, validation_alias=_env("session_max_events"))
    session_cache_ttl: float = Field(1.0, ge=0, le=60, validation_alias=_env("session_cache_ttl"))

    # Rate limits (per principal, or client address when unauthenticated; 0 = no limit)
    redis_url: SecretStr | None = Field(None, validation_alias=_env("redis_url"))
    redis_prefix: str = Field("mcpserve:rl:", min_length=1, validation_alias=_env("redis_prefix"))
    rate_limit_per_minute: int = Field(
        60, ge=0, validation_alias=_env("rate_limit_per_minute", "RATE_LIMIT_PER_MINUTE")
    )
    rate_limit_per_hour: int = Field(
        1000, ge=0, validation_alias=_env("rate_limit_per_hour", "RATE_LIMIT_PER_HOUR")
    )
    tool_rate_limits: Annotated[dict[str, ToolRateLimit], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("tool_rate_limits")
    )

    # Request execution
    tool_timeout: float = Field(60.0, gt=0, validation_alias=_env("tool_timeout"))
    # JSON object, tool name -> seconds; wins over the default and over @tool(timeout=...).
    tool_timeouts: SecondsByName = Field(default_factory=dict, validation_alias=_env("tool_timeouts"))
    request_state_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, validation_alias=_env("request_state_keys")
    )
    request_state_ttl: float = Field(600.0, gt=0, validation_alias=_env("request_state_ttl"))
    list_ttl_ms: int = Field(0, ge=0, validation_alias=_env("list_ttl_ms"))

    # Notifications a request sends while it runs (progress, log messages), per request, so a
    # tool in a loop cannot flood its client; see docs/configuration.md "Notification limits".
    progress_notifications_per_second: float = Field(
        10.0, ge=0, validation_alias=_env("progress_notifications_per_second")
    )
    log_notifications_per_second: float = Field(
        10.0, ge=0, validation_alias=_env("log_notifications_per_second")
    )
    notification_burst: int = Field(20, ge=1, validation_alias=_env("notification_burst"))

    # Operations
    drain_timeout: float = Field(30.0, ge=0, le=3600, validation_alias=_env("drain_timeout"))
    metrics_port: int | None = Field(None, ge=1, le=65535, validation_alias=_env("metrics_port"))
    metrics_allow: CommaList = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"], validation_alias=_env("metrics_allow")
    )
    cors_origins: CommaList = Field(
        default_factory=list, validation_alias=_env("cors_origins", "CORS_ORIGINS")
    )

    # Operator console (/admin): with metrics_port on that listener, else on the main port; open
    # to principals holding mcpserve:admin, or to loopback clients when authentication is off.
    admin_console: bool = Field(True, validation_alias=_env("admin_console"))

    # Tracing (OpenTelemetry; docs/tracing.md): off unless MCPSERVE_TRACING is true. The rest
    # are the standard OTEL_* variables, read here like every other setting and passed down.
    tracing: bool = Field(False, validation_alias=_env("tracing"))
    otel_sdk_disabled: bool = Field(False, validation_alias=AliasChoices("OTEL_SDK_DISABLED"))
    otel_service_name: str = Field(
        "mcpserve", min_length=1, validation_alias=AliasChoices("OTEL_SERVICE_NAME")
    )
    otel_resource_attributes: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias=AliasChoices("OTEL_RESOURCE_ATTRIBUTES")
    )
    otel_traces_exporter: Literal["otlp", "console", "none"] = Field(
        "otlp", validation_alias=AliasChoices("OTEL_TRACES_EXPORTER")
    )
    # The signal-specific endpoint is used as it is; the general one gets /v1/traces appended.
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    otel_exporter_otlp_endpoint: str = Field(
        "http://localhost:4318", validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    otel_exporter_otlp_protocol: Literal["http/protobuf"] = Field(
        "http/protobuf",
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
    )
    # Often carries an API key for a tracing vendor: a secret, masked in every report.
    otel_exporter_otlp_headers: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
    )
    otel_exporter_otlp_timeout: int = Field(
        10_000,
        ge=1,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
    )
    otel_traces_sampler: Literal[
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ] = Field("parentbased_always_on", validation_alias=AliasChoices("OTEL_TRACES_SAMPLER"))
    otel_traces_sampler_arg: float = Field(
        1.0, ge=0, le=1, validation_alias=AliasChoices("OTEL_TRACES_SAMPLER_ARG")
    )
    otel_bsp_schedule_delay: int = Field(5000, ge=1, validation_alias=AliasChoices("OTEL_BSP_SCHEDULE_DELAY"))
    otel_bsp_max_queue_size: int = Field(2048, ge=1, validation_alias=AliasChoices("OTEL_BSP_MAX_QUEUE_SIZE"))
    otel_bsp_max_export_batch_size: int = Field(
        512, ge=1, validation_alias=AliasChoices("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
    )
    otel_bsp_export_timeout: int = Field(
        30_000, ge=1, validation_alias=AliasChoices("OTEL_BSP_EXPORT_TIMEOUT")
    )

    # Demo application
    # sqlite:///path, a file path, or postgresql://...; unset: the bundled SQLite demo.
    database_url: str | None = Field(None, validation_alias=_env("database_url", "DATABASE_URL"))
    db_min_connections: int = Field(1, ge=0, le=1000, validation_alias=_env("db_min_connections"))
    db_max_connections: int = Field(
        20, ge=1, le=1000, validation_alias=_env("db_max_connections", "DB_MAX_CONNECTIONS")
    )
    # Seconds; the seed alias DB_IDLE_TIMEOUT is in milliseconds, as in the guides (see load_settings).
    db_idle_timeout: float = Field(30.0, ge=0, validation_alias=_env("db_idle_timeout", "DB_IDLE_TIMEOUT"))
    db_statement_timeout: float = Field(5.0, gt=0, le=3600, validation_alias=_env("db_statement_timeout"))
    docs_dir: Path | None = Field(None, validation_alias=_env("docs_dir"))

    # Gateway: upstream MCP servers served under ``name__`` (``[[upstreams]]`` tables in the
    # TOML file, or a JSON array in MCPSERVE_UPSTREAMS). See docs/gateway.md.
    upstreams: Annotated[list[UpstreamSpec], NoDecode] = Field(
        default_factory=list, validation_alias=_env("upstreams")
    )

    # Deployment: in-process TLS (docs/deployment.md); the certificate and key are reloaded on
    # SIGHUP and when the files change, for new connections.
    tls_cert_file: Path | None = Field(None, validation_alias=_env("tls_cert_file"))
    tls_key_file: Path | None = Field(None, validation_alias=_env("tls_key_file"))
    tls_client_ca_file: Path | None = Field(None, validation_alias=_env("tls_client_ca_file"))

    # What load_settings noticed in the environment that the log should say (service links
    # ignored, world-readable secret files): (level, message) pairs, names only, never values.
    _notices: tuple[tuple[str, str], ...] = PrivateAttr(default=())

    @property
    def notices(self) -> tuple[tuple[str, str], ...]:
        return self._notices

    @field_validator("tls_cert_file", "tls_key_file", "tls_client_ca_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @property
    def state_backend(self) -> Literal["memory", "redis"]:
        """The state backend in effect: the explicit choice, else redis when a Redis URL is set."""
        if self.state is not None:
            return self.state
        return "redis" if self.redis_url is not None else "memory"

    @field_validator(
        "allowed_hosts",
        "allowed_origins",
        "trusted_proxies",
        "required_scopes",
        "oauth_algorithms",
        "metrics_allow",
        "cors_origins",
        "request_state_keys",
        "api_keys",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("api_keys")
    @classmethod
    def _long_enough(cls, value: list[SecretStr]) -> list[SecretStr]:
        short = sum(len(key.get_secret_value()) < MIN_API_KEY_LENGTH for key in value)
        if short:  # the message counts the keys, never shows one
            raise ValueError(
                f"{short} of {len(value)} keys shorter than {MIN_API_KEY_LENGTH} characters; "
                "make keys with `mcpserve keys new`"
            )
        check_bearer_tokens([key.get_secret_value() for key in value])
        return value

    @field_validator("trusted_proxies", "metrics_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [check_network(item) for item in value]

    @field_validator("allowed_origins", "cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [check_origin(item) for item in value]

    @field_validator("oauth_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        return check_http_url(value, identifier=True) if value else None

    @field_validator("oauth_jwks_url", "oauth_introspection_url")
    @classmethod
    def _oauth_endpoint(cls, value: str | None) -> str | None:
        return check_http_url(value) if value else None

    @field_validator("tool_timeouts", "tool_rate_limits", "tool_scopes", mode="before")
    @classmethod
    def _json_object(cls, value: Any, info: ValidationInfo) -> Any:
        # Parsed here rather than by pydantic-settings, so bad JSON is a ConfigError naming the variable.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError(_BAD_JSON[info.field_name or ""]) from None
        return value

    @field_validator("upstreams", mode="before")
    @classmethod
    def _upstream_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError('not JSON; expected [{"name": ..., "command": ...}, ...]') from None
        return value

    @field_validator("upstreams")
    @classmethod
    def _unique_upstreams(cls, value: list[UpstreamSpec]) -> list[UpstreamSpec]:
        names = [spec.name for spec in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"upstream names must be unique: {', '.join(repeated)}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_redis_url(value.get_secret_value())
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return _check_database_url(value.strip()) if value is not None and value.strip() else None

    @field_validator("db_max_connections")
    @classmethod
    def _pool_bounds(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("db_min_connections")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least MCPSERVE_DB_MIN_CONNECTIONS ({minimum})")
        return value

    @field_validator("otel_resource_attributes", mode="before")
    @classmethod
    def _resource_attributes(cls, value: Any) -> Any:
        return (
            parse_key_values(value, "key=value pairs separated by commas")
            if isinstance(value, str)
            else value
        )

    @field_validator("otel_exporter_otlp_headers")
    @classmethod
    def _otlp_headers(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:  # the message never shows the value: headers carry API keys
            parse_key_values(value.get_secret_value(), "name=value pairs separated by commas")
        return value

    @field_validator("otel_exporter_otlp_endpoint", "otel_exporter_otlp_traces_endpoint")
    @classmethod
    def _otlp_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. http://localhost:4318")
        return value.strip()

    @field_validator("otel_exporter_otlp_protocol", mode="before")
    @classmethod
    def _otlp_protocol(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() != "http/protobuf":
            raise ValueError("only http/protobuf is supported (an OTLP/HTTP endpoint, usually port 4318)")
        return value.strip() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (init), then the environment; the TOML file arrives through init as a lower layer
        # (see load_settings). No .env files: configuration is explicit.
        return init_settings, _EnvWithoutServiceLinks(settings_cls)

    @property
    def tracing_enabled(self) -> bool:
        """``MCPSERVE_TRACING`` asks for traces; ``OTEL_SDK_DISABLED`` (the standard switch) wins."""
        return self.tracing and not self.otel_sdk_disabled

    def redacted(self) -> dict[str, Any]:
        """The effective configuration with every secret masked, for logs and ``mcpserve config``.

        General on purpose, so a new setting cannot forget it: secrets (``SecretStr``) are masked,
        except that a URL-valued secret (a field named ``*_url``) shows its URL with only the
        password masked; every other text value has any URL password masked.
        """
        data = self.model_dump(mode="json")
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                data[name] = redact_url(value.get_secret_value()) if name.endswith("_url") else MASK
            elif isinstance(value, str):
                data[name] = redact_url(value)
            elif name == "upstreams":
                data[name] = [spec.redacted(MASK) for spec in value]
            elif isinstance(value, list):
                data[name] = [redact_url(v) if isinstance(v, str) else MASK for v in value]
        return data


def child_environment(spec: UpstreamSpec) -> dict[str, str]:
    """A stdio upstream's environment: the allowlisted variables of ours, then its own ``env``.

    Nothing else leaks: the gateway's keys, tokens and MCPSERVE_* settings stay with the gateway.
    """
    names = (*DEFAULT_CHILD_ENV, *spec.env_allow)
    inherited = {name: os.environ[name] for name in names if name in os.environ}
    return {**inherited, **spec.env}


def header_values(spec: UpstreamSpec) -> dict[str, str]:
    """An HTTP upstream's static headers, secrets read from their variables or files now."""
    resolved: dict[str, str] = {}
    for header, source in spec.headers.items():
        where = f"upstreams.{spec.name}.headers.{header}"
        if isinstance(source, str):
            resolved[header] = source
        elif source.value is not None:
            resolved[header] = source.prefix + source.value
        elif source.env is not None:
            if source.env not in os.environ:
                raise ConfigError(where, f"environment variable {source.env} is not set")
            resolved[header] = source.prefix + os.environ[source.env]
        else:
            resolved[header] = source.prefix + _read_header_file(source, where)
    return resolved


def _read_header_file(source: HeaderSource, where: str) -> str:
    assert source.file is not None
    try:
        return source.file.read_text().strip()
    except OSError as exc:
        raise ConfigError(where, f"cannot read {source.file}: {exc.strerror}") from None


def parse_key_values(text: str, expected: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` as the OTEL_* variables write it (values percent-encoded)."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"expected {expected}")
        pairs[unquote(key.strip())] = unquote(value.strip())
    return pairs


class _EnvWithoutServiceLinks(EnvSettingsSource):
    """The environment without Kubernetes service links, which look like our variables but are not."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        ignored = {name.lower() for name in _service_links()}
        return {k: v for k, v in super()._load_env_vars().items() if k.lower() not in ignored}


def _service_links() -> list[str]:
    return service_links(os.environ, (ENV_PREFIX,))


# Settings whose value is a secret even though it is not a SecretStr (its URL may hold a password).
_SECRET_TEXT = frozenset({"database_url"})


def _is_secret(name: str) -> bool:
    return name in _SECRET_TEXT or "SecretStr" in str(Settings.model_fields[name].annotation)


def _file_twins() -> dict[str, list[tuple[str, str]]]:
    """Secret field -> its (variable, variable_FILE) pairs. A twin that is itself a setting's
    variable (``MCPSERVE_API_KEYS_FILE`` names the hashed keys file) is not one."""
    taken = {v for field in Settings.model_fields for v in _env_names(field)}
    return {
        name: [(v, v + "_FILE") for v in _env_names(name) if v + "_FILE" not in taken]
        for name in Settings.model_fields
        if _is_secret(name)
    }


def _secrets_from_files(env: set[str]) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]]]:
    """Values of secret settings read from ``<VARIABLE>_FILE``.

    Returns (field -> value, field -> the _FILE variable it came from, notices). A variable and
    its own twin both set is ambiguous; otherwise the first variable of a setting (plain or
    file) wins, as MCPSERVE_ names beat their aliases.
    """
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    notices: list[tuple[str, str]] = []
    for name, pairs in _file_twins().items():
        for variable, twin in pairs:
            if variable in env and twin in env:
                raise ConfigError(twin, f"set either {variable} or {twin}, not both")
            if variable in env:
                break
            if twin not in env:
                continue
            path = next(value for key, value in os.environ.items() if key.upper() == twin)
            try:
                found = read_secret_file(Path(path))
            except ValueError as exc:
                raise ConfigError(twin, str(exc)) from None
            values[name], sources[name] = found.value, twin
            if found.world_readable:
                notices.append(("warning", f"{twin}: {path} is readable by every user; chmod o-r it"))
            break
    return values, sources, notices


def _check_tls(settings: Settings) -> None:
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        missing = "MCPSERVE_TLS_KEY_FILE" if settings.tls_key_file is None else "MCPSERVE_TLS_CERT_FILE"
        raise ConfigError(missing, "TLS needs both MCPSERVE_TLS_CERT_FILE and MCPSERVE_TLS_KEY_FILE")
    if settings.tls_client_ca_file is not None and settings.tls_cert_file is None:
        raise ConfigError("MCPSERVE_TLS_CLIENT_CA_FILE", "mutual TLS needs MCPSERVE_TLS_CERT_FILE too")
    if settings.tls_cert_file is not None and settings.transport != "http":
        raise ConfigError("MCPSERVE_TLS_CERT_FILE", "TLS applies to the http transport only")


def _check_database_url(url: str) -> str:
    """Accept sqlite:///path, a bare file path or postgresql:// URLs; messages never echo the URL."""
    scheme, separator, _ = url.partition("://")
    if not separator and url.lower().startswith(("postgres:", "postgresql:")):
        raise ValueError("malformed PostgreSQL URL; expected postgresql://user@host:5432/database")
    if scheme.lower() in ("postgresql", "postgres"):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        except ValueError:
            raise ValueError("malformed PostgreSQL URL (check the host and port)") from None
        if not parts.hostname and "host=" not in parts.query:
            raise ValueError("a PostgreSQL URL needs a host: postgresql://user@host:5432/database")
        return url
    if separator and scheme.lower() != "sqlite":
        raise ValueError(
            f"unsupported database scheme {scheme[:20]!r}; use sqlite:///path, a file path, "
            "or postgresql://user@host/database"
        )
    if separator and not url.startswith("sqlite:///"):
        raise ValueError("SQLite URLs are sqlite:///relative/path or sqlite:////absolute/path")
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        raise ValueError("no SQLite database file at the configured path")
    return url


def _check_redis_url(url: str) -> None:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    if parts.scheme in ("redis", "rediss") and parts.hostname:
        return
    if parts.scheme == "unix" and parts.path:
        return
    raise ValueError("expected redis://host[:port][/db], rediss://... or unix:///path/to/socket")


def _read_toml(path: Path) -> dict[str, Any]:
    data = read_toml(path, "MCPSERVE_CONFIG", what="config file")
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError("MCPSERVE_CONFIG", f"{path}: unknown settings {', '.join(unknown)}")
    return data


def _check_unknown_variables() -> None:
    """An ``MCPSERVE_*`` variable that sets nothing is a typo: name it and the closest real one.

    Service links are not typos (see :mod:`mcpserve.config_sources`); ``_FILE`` twins are settings.
    """
    known = {v for field in Settings.model_fields for v in _env_names(field) if v.startswith(ENV_PREFIX)}
    known |= {twin for pairs in _file_twins().values() for _, twin in pairs}
    links = set(_service_links())
    for variable in sorted(os.environ):
        if variable in links:
            continue
        name = variable.upper()
        if not name.startswith(ENV_PREFIX) or name in known or name in _NOT_SETTINGS:
            continue
        if name.startswith(_TEST_PREFIX):
            continue
        # Compared without the shared prefix, which would make every name look close.
        suffixes = sorted(v.removeprefix(ENV_PREFIX) for v in known)
        close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), suffixes, n=1)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        raise ConfigError(variable, f"unknown setting{hint} (docs/configuration.md lists them)")


def _env_names(name: str) -> list[str]:
    """The environment variables that set field ``name``, in the order pydantic-settings tries them."""
    alias = Settings.model_fields[name].validation_alias
    return [c for c in alias.choices if isinstance(c, str)] if isinstance(alias, AliasChoices) else []


def _field_for(location: str) -> str | None:
    """The field an error location names: the field itself or one of its variables."""
    if location in Settings.model_fields:
        return location
    return next((n for n in Settings.model_fields if location.upper() in _env_names(n)), None)


def _config_error(
    location: str,
    message: str,
    *,
    env: set[str],
    flags: set[str],
    file: dict[str, Any],
    path: str,
    secret_files: Mapping[str, str],
) -> ConfigError:
    """Name the setting the operator has to fix: the variable actually set, or the config file key."""
    name = _field_for(location)
    if name is None:
        return ConfigError(location, message)
    if name in secret_files and name not in flags:
        return ConfigError(secret_files[name], message)
    if name not in flags:
        present = [variable for variable in _env_names(name) if variable.upper() in env]
        if present:
            return ConfigError(present[0], message)
        if name in file:
            return ConfigError(ENV_PREFIX + "CONFIG", f"{path}: {name}: {message}")
    return ConfigError(ENV_PREFIX + name.upper(), message)


def _seed_milliseconds(env: set[str]) -> dict[str, float]:
    """``DB_IDLE_TIMEOUT`` counts milliseconds in the seed guides (30000); our field counts seconds.

    Applied only when the alias alone is set, so ``MCPSERVE_DB_IDLE_TIMEOUT`` (seconds) wins.
    """
    if "DB_IDLE_TIMEOUT" not in env or "MCPSERVE_DB_IDLE_TIMEOUT" in env:
        return {}
    raw = next(value for key, value in os.environ.items() if key.upper() == "DB_IDLE_TIMEOUT")
    try:
        milliseconds = float(raw)
    except ValueError:
        raise ConfigError("DB_IDLE_TIMEOUT", "must be a number of milliseconds") from None
    if not milliseconds >= 0:
        raise ConfigError("DB_IDLE_TIMEOUT", "must be a non-negative number of milliseconds")
    return {"db_idle_timeout": milliseconds / 1000}


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """Build the one Settings object. Raises :class:`ConfigError` naming the bad variable."""
    _check_unknown_variables()
    links = _service_links()
    env = {key.upper() for key in os.environ} - set(links)
    file_name = config_file or os.environ.get(ENV_PREFIX + "CONFIG")
    layered: dict[str, Any] = _read_toml(Path(file_name)) if file_name else {}
    from_files, secret_files, notices = _secrets_from_files(env)
    # Environment beats the file: drop file values the environment sets, then let flags win.
    for name in Settings.model_fields:
        if any(variable.upper() in env for variable in _env_names(name)):
            layered.pop(name, None)
    file_values = dict(layered)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    layered.update(from_files)
    layered.update(_seed_milliseconds(env))
    layered.update(flags)
    try:
        settings = Settings(**layered)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        location = str(error["loc"][0]) if error["loc"] else "settings"
        inner = ".".join(str(part) for part in error["loc"][1:])  # e.g. the tool and key in a JSON value
        message = error["msg"].removeprefix("Value error, ")  # our validators' words, without pydantic's
        raise _config_error(
            location,
            f"{inner}: {message}" if inner else message,
            env=env,
            flags=set(flags),
            file=file_values,
            path=str(file_name),
            secret_files=secret_files,
        ) from None
    problems = cross_checks(settings)
    if problems:
        name, message = problems[0]
        raise _config_error(
            name,
            message,
            env=env,
            flags=set(flags),
            file=file_values,
            path=str(file_name),
            secret_files=secret_files,
        )
    _check_tls(settings)
    if links:
        notices.insert(0, ("info", f"ignored Kubernetes service-link variables: {', '.join(links)}"))
    settings._notices = tuple(notices)
    return settings
