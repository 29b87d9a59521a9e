"""Three mcpserve replicas on one private Redis behind nginx round-robin, as child processes.

Everything listens on free loopback ports and is stopped by PID.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from tests.store.test_runtime_state import KEY
from tests.support.edge import nginx_with
from tests.support.redis_server import private_redis
from tests.support.replica import Replica

APP = Path(__file__).with_name("cluster_app.py")

# Plain round-robin (what we recommend), or the guides' hash of Mcp-Session-Id, where requests
# without one (initialize, 2026-07-28) hash the client's address. proxy_next_upstream stays at its
# default (error timeout): a refused connection (a replica draining or down) goes to the next one.
BALANCING = {
    "round-robin": "",
    "session-hash": "        hash $mcp_affinity consistent;",
}
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;  proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi;  uwsgi_temp_path {dir}/uwsgi;  scgi_temp_path {dir}/scgi;
    map $http_mcp_session_id $mcp_affinity {{
        "" $remote_addr;
        default $http_mcp_session_id;
    }}
    upstream mcp {{
{balancing}
{servers}
        keepalive 16;
        keepalive_timeout 4s;  # below the replicas' keep-alive timeout
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://mcp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout 120s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


def nginx(directory: Path, ports: list[int], balancing: str = "round-robin") -> AbstractContextManager[int]:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=1s;" for p in ports)
    return nginx_with(
        directory,
        lambda port: NGINX_CONF.format(
            dir=directory, port=port, servers=servers, balancing=BALANCING[balancing]
        ),
    )


@contextlib.contextmanager
def cluster(
    directory: Path, balancing: str = "round-robin", size: int = 3
) -> Iterator[tuple[list[Replica], str]]:
    """``size`` replicas and the proxy's MCP URL."""
    with private_redis() as redis_server:
        prefix = f"cluster-{uuid.uuid4().hex[:8]}:"
        replicas = [
            Replica(
                APP,
                directory,
                str(index + 1),
                MCPSERVE_REDIS_URL=redis_server.url,
                MCPSERVE_STATE_PREFIX=prefix,
                MCPSERVE_REQUEST_STATE_KEYS=KEY,
            )
            for index in range(size)
        ]
        try:
            for replica in replicas:
                replica.start()
            with nginx(directory, [replica.port for replica in replicas], balancing) as port:
                yield replicas, f"http://127.0.0.1:{port}/mcp"
        finally:
            for replica in replicas:
                replica.kill()
