"""In-process TLS whose certificate can be replaced while the server runs.

One ``ssl.SSLContext`` serves every connection. ``load_cert_chain`` on that same context changes
the certificate presented by *new* handshakes only: connections already open keep the session
they negotiated, so a reload drops nothing. A reload happens on SIGHUP (see serve.py) and when
one of the files changes (polled: a Kubernetes Secret update swaps a symlink, which no inotify
watch on the file itself would see). The new pair is first loaded into a scratch context, so a
half-written or mismatched pair is refused and the current certificate stays in use.

With a client CA, every client must present a certificate that CA signed (mutual TLS); a
reload re-reads the CA bundle too (certificates are added: OpenSSL has no way to remove one
from a live context, so a CA taken out of the bundle needs a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Iterator
from pathlib import Path

from mcpserve.errors import ConfigError

__all__ = ["ReloadingTls", "WATCH_INTERVAL"]

logger = logging.getLogger("mcpserve.tls")
# Seconds between checks of the files: a stat of three paths.
WATCH_INTERVAL = 2.0

_Stamp = tuple[tuple[int, int, int], ...]


class ReloadingTls:
    """The server's TLS context, and its reload from the same files."""

    def __init__(self, cert_file: Path, key_file: Path, client_ca_file: Path | None = None) -> None:
        self._cert_file = cert_file
        self._key_file = key_file
        self._client_ca_file = client_ca_file
        self.context = self._new_context()
        try:
            self.context.load_cert_chain(cert_file, key_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(
                "MCPSERVE_TLS_CERT_FILE", f"cannot load the certificate and key: {_reason(exc)}"
            ) from None
        if client_ca_file is not None:
            try:
                self.context.load_verify_locations(cafile=client_ca_file)
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise ConfigError(
                    "MCPSERVE_TLS_CLIENT_CA_FILE", f"cannot load the client CA: {_reason(exc)}"
                ) from None
        self._stamp = self._files_stamp()

    def _new_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        if self._client_ca_file is not None:
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def _load(self, context: ssl.SSLContext) -> None:
        context.load_cert_chain(self._cert_file, self._key_file)
        if self._client_ca_file is not None:
            context.load_verify_locations(cafile=self._client_ca_file)

    def _files_stamp(self) -> _Stamp:
        files = [self._cert_file, self._key_file]
        if self._client_ca_file is not None:
            files.append(self._client_ca_file)
        stamps = []
        for path in files:
            try:
                found = path.stat()  # follows symlinks: a swapped Secret volume counts as a change
            except OSError:
                stamps.append((0, 0, 0))
            else:
                stamps.append((found.st_ino, found.st_mtime_ns, found.st_size))
        return tuple(stamps)

    def reload(self, why: str) -> bool:
        """Load the files again for new handshakes; False (and a warning) if they do not load."""
        self._stamp = self._files_stamp()
        try:
            self._load(self._new_context())  # refuse a broken pair before touching the live one
            self._load(self.context)
        except (ssl.SSLError, OSError, ValueError) as exc:
            logger.warning("TLS reload (%s) failed, keeping the current certificate: %s", why, _reason(exc))
            return False
        logger.info("TLS certificate reloaded (%s)", why)
        return True

    def changed(self) -> bool:
        return self._files_stamp() != self._stamp

    @contextlib.contextmanager
    def reloading(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        """While serving: reload on SIGHUP and when the files change."""
        loop.add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
        watcher = loop.create_task(self.watch())
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            watcher.cancel()

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Reload whenever the files change; runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            if self.changed():
                self.reload("files changed")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)[:200]
