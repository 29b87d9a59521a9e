"""An in-process app with the console, keys with and without the admin scope."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from mcpserve.auth.keys import generate_key, hash_key
from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from tests.ops.support import make_server

ADMIN = "admin"
USER = "user"


def write_keys(directory: Path) -> dict[str, str]:
    """A keys file with an operator (mcpserve:admin) and a plain user; returns name -> key."""
    keys = {ADMIN: generate_key(), USER: generate_key()}
    scopes = {ADMIN: '["mcpserve:admin"]', USER: '["tools:read"]'}
    text = "".join(
        f'[[keys]]\nprincipal = "{name}"\nsha256 = "{hash_key(key)}"\nscopes = {scopes[name]}\n\n'
        for name, key in keys.items()
    )
    (directory / "keys.toml").write_text(text)
    return keys


def keyed_app(directory: Path, **settings: Any) -> tuple[HttpApp, dict[str, str]]:
    keys = write_keys(directory)
    app = build_http_app(
        make_server(), load_settings({"api_keys_file": str(directory / "keys.toml"), **settings})
    )
    return app, keys


def basic(key: str, user: str = "operator") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}
