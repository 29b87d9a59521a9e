"""Where deployment platforms put values that are not ours, and secrets kept in files.

Pure helpers for :mod:`mcpserve.config`, which stays the only module reading the environment:

- Kubernetes *service links*: every Service of a namespace injects ``<NAME>_SERVICE_HOST``,
  ``<NAME>_SERVICE_PORT[_<PORTNAME>]``, ``<NAME>_PORT=tcp://ip:port`` and
  ``<NAME>_PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]`` into each pod (Docker links did the same). A
  Service named ``mcpserve`` therefore sets ``MCPSERVE_PORT=tcp://10.96.0.12:8000``; one named
  ``mcpserve-metrics`` sets ``MCPSERVE_METRICS_PORT=tcp://...``. Those are recognised by name
  *and* value shape and ignored, so they neither crash the server nor configure it.
- ``<VARIABLE>_FILE``: the convention of the official database images and of Kubernetes/Docker
  secrets: the value is the file's content, trailing newlines stripped.
"""

from __future__ import annotations

import ipaddress
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SecretFile", "is_service_link", "read_secret_file", "service_links"]

_PROTOCOLS = "TCP|UDP|SCTP"
# <NAME>_PORT_<n>_<PROTO>, optionally _PROTO / _PORT / _ADDR: only service links look like this.
_PORT_DETAIL = re.compile(rf"^[A-Z0-9_]+_PORT_\d+_({_PROTOCOLS})(_(PROTO|PORT|ADDR))?$")
# <NAME>_SERVICE_HOST (an IP address) and <NAME>_SERVICE_PORT[_<PORTNAME>] (a number).
_SERVICE_HOST = re.compile(r"^[A-Z0-9_]+_SERVICE_HOST$")
_SERVICE_PORT = re.compile(r"^[A-Z0-9_]+_SERVICE_PORT(_[A-Z0-9_]+)?$")
# <NAME>_PORT (or the bare PORT alias) holding the Service's first port as a URL.
_PORT_URL_NAME = re.compile(r"^([A-Z0-9_]+_)?PORT$")
_PORT_URL_VALUE = re.compile(r"^(tcp|udp|sctp)://\[?[0-9A-Fa-f.:]+\]?:\d{1,5}$")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_service_link(name: str, value: str) -> bool:
    """Whether ``name=value`` has the exact shape of a Kubernetes (or Docker) service link."""
    name = name.upper()
    if _PORT_DETAIL.match(name):
        return True
    if _SERVICE_HOST.match(name):
        return _is_ip(value) or value == ""  # headless Services have no cluster IP
    if _SERVICE_PORT.match(name):
        return value.isdigit()
    return bool(_PORT_URL_NAME.match(name) and _PORT_URL_VALUE.match(value))


def service_links(environ: Mapping[str, str], prefixes: tuple[str, ...]) -> list[str]:
    """The variables of ``environ`` starting with one of ``prefixes`` (or named ``PORT``) that are
    service links, sorted."""
    return sorted(
        name
        for name, value in environ.items()
        if (name.upper().startswith(prefixes) or name.upper() == "PORT") and is_service_link(name, value)
    )


@dataclass(frozen=True, slots=True)
class SecretFile:
    value: str
    world_readable: bool


def read_secret_file(path: Path) -> SecretFile:
    """The content of a secret file, trailing newlines stripped. Raises ``ValueError`` with a
    message that never contains the content."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    value = text.rstrip("\r\n")
    if not value.strip():
        raise ValueError(f"{path} is empty")
    return SecretFile(value, bool(mode & stat.S_IROTH))
