"""``mcpserve health``: the liveness probe a container runs against its own server.

A HEALTHCHECK needs a client in the image; this one is the standard library, so the image
carries no curl. It asks the address the settings say the server listens on.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

from mcpserve.config import Settings

__all__ = ["health_url", "probe_health"]

_ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names of the wildcard bind, not a bind


def health_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in _ANY_ADDRESS else settings.host
    if ":" in host:
        host = f"[{host}]"
    if settings.metrics_port is not None:
        return f"http://{host}:{settings.metrics_port}/health"
    scheme = "https" if settings.tls_cert_file is not None else "http"
    return f"{scheme}://{host}:{settings.port}/health"


def probe_health(settings: Settings, timeout: float) -> tuple[bool, str]:
    """(live, what was seen). The server's own certificate is not verified: this is a liveness
    probe of the process on this machine, not a client trusting it."""
    url = health_url(settings)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:  # noqa: S310
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: {reason}"
