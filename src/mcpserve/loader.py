"""Load the application a user names on the command line: a file path, a module or ``module:attr``.

Modules are found from the current folder first, as ``python -m`` and uvicorn find them, so
``mcpserve serve app`` and ``mcpserve serve app:app`` work from the app's own folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from mcpserve.config import Settings
from mcpserve.server.app import MCPServer

__all__ = ["load_app", "DEFAULT_APP", "AppLoadError"]

DEFAULT_APP = "mcpserve.demo.app:create_app"
_CANDIDATES = ("app", "server", "mcp")


class AppLoadError(Exception):
    """The named application could not be found or is not an MCPServer."""


def _module_from_path(path: Path) -> Any:
    if not path.is_file():
        raise AppLoadError(f"No such file: {path}")
    name = f"_mcpserve_app_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"Cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent.resolve()))
    spec.loader.exec_module(module)
    return module


def load_app(spec: str, settings: Settings) -> MCPServer:
    """Resolve ``spec`` to an MCPServer; a factory attribute is called with the settings."""
    target, _, attr = spec.partition(":")
    if target.endswith(".py") or "/" in target:
        module = _module_from_path(Path(target))
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise AppLoadError(f"Cannot import module {target!r}: {exc}") from None
    names = (attr,) if attr else _CANDIDATES
    for name in names:
        obj = getattr(module, name, None)
        if isinstance(obj, MCPServer):
            return obj
        if callable(obj) and name == attr:
            created = obj(settings) if inspect.signature(obj).parameters else obj()
            if isinstance(created, MCPServer):
                return created
            raise AppLoadError(f"{spec} returned {type(created).__name__}, not an MCPServer")
    raise AppLoadError(f"{spec}: no MCPServer found (looked for {', '.join(names)})")
