"""Read a TOML file an operator names (the settings file, the API keys file).

Below every layer that needs it, so reading the keys file does not make ``auth/`` depend on
:mod:`mcpserve.config`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from mcpserve.errors import ConfigError

__all__ = ["read_toml"]


def read_toml(path: Path, variable: str, *, what: str = "file") -> dict[str, Any]:
    """A TOML file named by ``variable``; a missing or malformed one is a ConfigError naming it."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(variable, f"{what} not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(variable, f"{path} is not valid TOML: {exc}") from None
