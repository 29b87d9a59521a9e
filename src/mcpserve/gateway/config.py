"""The ``[[upstreams]]`` tables: one validated, frozen model per upstream server.

Pure data: values that come from the environment or from files (header secrets, the variables a
child inherits) are resolved by :mod:`mcpserve.config`, the one module that reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mcpserve.urls import redact_url

__all__ = ["HeaderSource", "ToolFilter", "UpstreamSpec", "UPSTREAM_NAME", "DEFAULT_CHILD_ENV"]

# Lower-case letters, digits and '-': no '_' (so ``name__tool`` splits at the first "__") and a
# valid URI scheme prefix (``name+file:///...``, see naming.py).
UPSTREAM_NAME = r"^[a-z][a-z0-9-]{0,31}$"

# What a child inherits from the gateway's environment unless the upstream says otherwise: enough
# to find programs and run them, nothing that could hold the gateway's own secrets.
DEFAULT_CHILD_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "TERM")

_STDIO_ONLY = ("args", "env", "cwd", "env_allow", "isolation", "max_children", "idle_timeout")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeaderSource(_Strict):
    """A header value: literal ``value``, or read from ``env`` (a variable) or ``file`` (a path),
    after ``prefix`` (``prefix = "Bearer "`` with the token alone in the variable)."""

    value: str | None = None
    env: str | None = None
    file: Path | None = None
    prefix: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> HeaderSource:
        if sum(x is not None for x in (self.value, self.env, self.file)) != 1:
            raise ValueError("give exactly one of value, env, file")
        return self


class ToolFilter(_Strict):
    """Which upstream tools are served: ``allow`` (default all) minus ``deny``; names as upstream."""

    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)

    def admits(self, name: str) -> bool:
        return (self.allow is None or name in self.allow) and name not in self.deny


class UpstreamSpec(_Strict):
    """One upstream: a stdio program (``command``) or a Streamable HTTP server (``url``)."""

    name: str = Field(pattern=UPSTREAM_NAME)
    # stdio
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    env_allow: list[str] = Field(default_factory=list)  # more variables to pass through
    cwd: Path | None = None
    isolation: Literal["shared", "per-principal", "per-session"] = "shared"
    max_children: int = Field(32, ge=1, le=10_000)  # per-principal / per-session pool cap
    idle_timeout: float = Field(300.0, gt=0)  # seconds before an unused pooled child is stopped
    # HTTP
    url: str | None = Field(None, pattern=r"^https?://[^/?#\s]+(/[^#\s]*)?$")
    headers: dict[str, str | HeaderSource] = Field(default_factory=dict)
    # "auto": server/discover, else initialize. Pin "2025" for a server that answers discover
    # but serves it poorly (a stdio bridge that starts a process per sessionless request).
    era: Literal["auto", "2025", "2026"] = "auto"
    # both
    tools: ToolFilter = Field(default_factory=ToolFilter)
    rename: dict[str, str] = Field(default_factory=dict)  # upstream name -> served name (prefixed)
    timeout: float = Field(60.0, gt=0)  # one call to the upstream
    start_timeout: float = Field(30.0, gt=0)  # start + initialize + first listing
    restart_backoff: float = Field(0.25, gt=0)  # first restart delay; doubles per crash
    restart_backoff_max: float = Field(10.0, gt=0)
    crash_loop_limit: int = Field(5, ge=1)  # crashes within crash_loop_window -> failed
    crash_loop_window: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> UpstreamSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (a stdio program) or url (a Streamable HTTP server)")
        if self.url is not None:
            stray = [k for k in _STDIO_ONLY if k in self.model_fields_set]
            if stray:
                raise ValueError(f"{', '.join(stray)}: only for stdio upstreams (command)")
        elif self.headers or "era" in self.model_fields_set:
            raise ValueError("headers, era: only for HTTP upstreams (url)")
        return self

    def redacted(self, mask: str) -> dict[str, object]:
        """This table for logs and ``mcpserve config``: env values and header values masked
        (a header read from a variable or file shows where from, never the value)."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        if self.url is not None:
            data["url"] = redact_url(self.url)
        if self.env:
            data["env"] = dict.fromkeys(self.env, mask)
        if self.headers:
            data["headers"] = {
                header: {
                    k: v for k, v in source.model_dump(mode="json").items() if k in ("env", "file") and v
                }
                if isinstance(source, HeaderSource) and source.value is None
                else mask
                for header, source in self.headers.items()
            }
        return data

    @property
    def kind(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"
