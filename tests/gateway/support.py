"""What the gateway tests share: the third-party servers' launchers and a gateway.toml writer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mcpserve.auth.keys import hash_key
from tests.support.servers import ROOT

UPSTREAM_APP = ROOT / "tests" / "gateway" / "upstream_app.py"
FULL_KEY = "mcps_gateway-full-key-for-tests"
LIMITED_KEY = "mcps_gateway-limited-key-for-tests"


def test_upstream(name: str = "test", **options: Any) -> dict[str, Any]:
    return {"name": name, "command": sys.executable, "args": [str(UPSTREAM_APP)], **options}


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    return str(value)


def write_config(path: Path, upstreams: list[dict[str, Any]], **settings: Any) -> Path:
    lines = [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    for upstream in upstreams:
        lines.append("\n[[upstreams]]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in upstream.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_keys(path: Path) -> Path:
    path.write_text(
        f"""
[[keys]]
principal = "full"
sha256 = "{hash_key(FULL_KEY)}"
scopes = ["time"]

[[keys]]
principal = "limited"
sha256 = "{hash_key(LIMITED_KEY)}"
scopes = []
"""
    )
    return path
