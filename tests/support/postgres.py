"""PostgreSQL for tests: a unique schema on the shared server, or a private server to stop at will.

The shared server (127.0.0.1:5432, database ``test``) serves other test runs at the same time, so
tests only ever create and drop their own uniquely named schemas there. Tests that need a database
to go away start a private cluster with ``initdb`` + ``pg_ctl`` in a temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from .servers import free_port

SHARED_URL = os.environ.get("MCPSERVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_BIN = Path(os.environ.get("MCPSERVE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def unique_schema() -> str:
    return f"mcpserve_test_{uuid.uuid4().hex[:12]}"


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``search_path`` set (asyncpg passes unknown query parameters as settings)."""
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free loopback port; ``stop()`` and ``start()`` at will."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # initdb refuses to run as root: run the server binaries as the postgres user then.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.running = False

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as, *command], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        log = str(self.root / "server.log")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        self.running = True

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running private cluster, stopped and deleted afterwards."""
    # Not pytest's tmp_path: its parent folders are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="mcpserve-pg-"))
    server = PrivatePostgres(root)
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        server.init()
        server.start()
        yield server
    finally:
        if server.running:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
