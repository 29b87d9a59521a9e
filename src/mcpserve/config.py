"""Settings: built once at the edge from ``MCPSERVE_*`` variables and an optional TOML file.

This is the only module that reads the environment. Precedence, highest first: command-line
flags, environment variables, the TOML file (``--config`` / ``MCPSERVE_CONFIG``), defaults.
Variable names are fixed so deployments can rely on them; a few unprefixed names from the
seed guides (``PORT``, ``LOG_LEVEL``, ...) are accepted as aliases.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from mcpserve.config_checks import (
    check_database_url,
    check_network,
    check_origin,
    cross_checks,
    redact_url,
)
from mcpserve.errors import ConfigError

__all__ = ["Settings", "load_settings", "ENV_PREFIX"]

ENV_PREFIX = "MCPSERVE_"


def _env(name: str, *aliases: str) -> AliasChoices:
    # Field names themselves are not env aliases: PATH or HOST must never configure us.
    return AliasChoices(ENV_PREFIX + name.upper(), *aliases)


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]


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

    # Authentication ("keys", "oauth", "keys,oauth" or "none"; unset: not yet chosen)
    auth: str | None = Field(
        None, pattern=r"^(none|keys|oauth|keys,oauth|oauth,keys)$", validation_alias=_env("auth")
    )

    # 2025-era sessions
    max_sessions: int = Field(10_000, ge=1, validation_alias=_env("max_sessions"))
    session_idle_timeout: float = Field(1800.0, gt=0, validation_alias=_env("session_idle_timeout"))

    # Request execution
    tool_timeout: float = Field(60.0, gt=0, validation_alias=_env("tool_timeout"))
    request_state_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, validation_alias=_env("request_state_keys")
    )
    request_state_ttl: float = Field(600.0, gt=0, validation_alias=_env("request_state_ttl"))
    list_ttl_ms: int = Field(0, ge=0, validation_alias=_env("list_ttl_ms"))

    # Operations
    drain_timeout: float = Field(30.0, ge=0, le=3600, validation_alias=_env("drain_timeout"))
    metrics_port: int | None = Field(None, ge=1, le=65535, validation_alias=_env("metrics_port"))
    metrics_allow: CommaList = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"], validation_alias=_env("metrics_allow")
    )
    cors_origins: CommaList = Field(
        default_factory=list, validation_alias=_env("cors_origins", "CORS_ORIGINS")
    )

    # Demo application
    database_url: str | None = Field(None, validation_alias=_env("database_url", "DATABASE_URL"))
    docs_dir: Path | None = Field(None, validation_alias=_env("docs_dir"))

    @field_validator(
        "allowed_hosts", "allowed_origins", "trusted_proxies", "metrics_allow", "cors_origins", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("request_state_keys", mode="before")
    @classmethod
    def _comma_separated_secrets(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("trusted_proxies", "metrics_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [check_network(item) for item in value]

    @field_validator("allowed_origins", "cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [check_origin(item) for item in value]

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return check_database_url(value) if value is not None else None

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
        return init_settings, env_settings

    def redacted(self) -> dict[str, Any]:
        """The effective configuration with every secret masked, for logs and ``mcpserve config``."""
        # SecretStr fields already dump masked; URLs may carry a password in their user-info.
        data = self.model_dump(mode="json")
        for name, value in data.items():
            if name.endswith("_url") and isinstance(value, str):
                data[name] = redact_url(value)
        return data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("MCPSERVE_CONFIG", f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("MCPSERVE_CONFIG", f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError("MCPSERVE_CONFIG", f"{path}: unknown settings {', '.join(unknown)}")
    return data


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
    location: str, message: str, *, env: set[str], flags: set[str], file: dict[str, Any], path: str
) -> ConfigError:
    """Name the setting the operator has to fix: the variable actually set, or the config file key."""
    name = _field_for(location)
    if name is None:
        return ConfigError(location, message)
    if name not in flags:
        present = [variable for variable in _env_names(name) if variable.upper() in env]
        if present:
            return ConfigError(present[0], message)
        if name in file:
            return ConfigError(ENV_PREFIX + "CONFIG", f"{path}: {name}: {message}")
    return ConfigError(ENV_PREFIX + name.upper(), message)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """Build the one Settings object. Raises :class:`ConfigError` naming the bad variable."""
    env = {key.upper() for key in os.environ}
    file_name = config_file or os.environ.get(ENV_PREFIX + "CONFIG")
    layered: dict[str, Any] = _read_toml(Path(file_name)) if file_name else {}
    # Environment beats the file: drop file values the environment sets, then let flags win.
    for name in Settings.model_fields:
        if any(variable.upper() in env for variable in _env_names(name)):
            layered.pop(name, None)
    file_values = dict(layered)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    layered.update(flags)
    try:
        settings = Settings(**layered)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        location = str(error["loc"][0]) if error["loc"] else "settings"
        raise _config_error(
            location, error["msg"], env=env, flags=set(flags), file=file_values, path=str(file_name)
        ) from None
    problems = cross_checks(settings)
    if problems:
        name, message = problems[0]
        raise _config_error(name, message, env=env, flags=set(flags), file=file_values, path=str(file_name))
    return settings
