"""A rolling SIGTERM of two replicas behind nginx under continuous load fails no request.

The proxy is plain nginx round-robin with upstream keep-alive and its default
``proxy_next_upstream error timeout``: a replica that is draining closes its listener, so nginx's
next connection to it is refused and retried on the other replica, and every kept-alive
connection gets its last answer with ``Connection: close``. No 503 reaches a client.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path

import orjson
import pytest

from tests.support.asgi import META, MODERN_HEADERS
from tests.support.edge import nginx_with
from tests.support.logcheck import check_log_lines
from tests.support.replica import Replica

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("drain_app.py")

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;  proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi;  uwsgi_temp_path {dir}/uwsgi;  scgi_temp_path {dir}/scgi;
    upstream mcp {{
        server 127.0.0.1:{a} max_fails=1 fail_timeout=1s;
        server 127.0.0.1:{b} max_fails=1 fail_timeout=1s;
        keepalive 16;
        keepalive_timeout 60s;  # nginx's default, below the replicas' MCPSERVE_KEEPALIVE_TIMEOUT
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://mcp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout 60s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


def nginx(directory: Path, a: int, b: int) -> AbstractContextManager[int]:
    return nginx_with(directory, lambda port: NGINX_CONF.format(dir=directory, port=port, a=a, b=b))


class Load:
    """Client threads sending 2026-07-28 tool calls through the proxy until stopped."""

    def __init__(self, port: int, threads: int = 3) -> None:
        self.port = port
        self.stopping = threading.Event()
        self.answered: Counter[str] = Counter()  # upstream address -> calls answered 200
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(index,)) for index in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        calls = 0
        while not self.stopping.is_set():
            calls += 1
            # One thread in three runs a call that takes a while, so drains find calls in flight.
            name, arguments = (
                ("pause", {"seconds": 0.2}) if index == 0 else ("echo", {"text": f"{index}-{calls}"})
            )
            body = {
                "jsonrpc": "2.0",
                "id": calls,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments, "_meta": META},
            }
            headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": name}
            try:
                connection.request("POST", "/mcp", orjson.dumps(body), headers)
                response = connection.getresponse()
                payload = response.read()
                upstream = response.getheader("x-upstream", "")
                ok = response.status == 200 and "result" in orjson.loads(payload)
                outcome = "" if ok else f"{response.status} {upstream} {payload[:200]!r}"
            except (OSError, http.client.HTTPException) as exc:  # the proxy itself must never fail us
                outcome, upstream = f"{type(exc).__name__}: {exc}", ""
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            with self._lock:
                if outcome:
                    self.failures.append(outcome)
                else:
                    self.answered[upstream] += 1
            self.stopping.wait(0.02)  # a small load: about 50 calls a second per thread
        connection.close()

    def wait_for_traffic(self, upstream: str, seconds: float = 15) -> None:
        """Until the proxy sends calls to ``upstream`` again (a rolling restart's gate)."""
        with self._lock:
            before = self.answered[upstream]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with self._lock:
                if self.answered[upstream] >= before + 5:
                    return
            time.sleep(0.05)  # polling interval for the load threads' progress
        raise TimeoutError(f"no traffic reached {upstream}")


def test_a_rolling_sigterm_of_two_replicas_behind_nginx_fails_no_request(tmp_path: Path) -> None:
    replicas = [Replica(APP, tmp_path, name) for name in ("a", "b")]
    try:
        for replica in replicas:
            replica.start()
        with nginx(tmp_path, replicas[0].port, replicas[1].port) as proxy, Load(proxy) as load:
            for replica in replicas:
                load.wait_for_traffic(f"127.0.0.1:{replica.port}")
            for replica in replicas:  # the rolling restart
                assert replica.stop() == 0
                replica.start()
                load.wait_for_traffic(f"127.0.0.1:{replica.port}")
        answered, failures = sum(load.answered.values()), load.failures
    finally:
        for replica in replicas:
            replica.kill()
    assert failures == [], f"{len(failures)} of {answered + len(failures)} calls failed: {failures[:5]}"
    assert answered >= 40
    for replica in replicas:
        for log in replica.logs():
            lines = check_log_lines(log)
            assert not [line for line in lines if line.get("event") == "request" and line["status"] != 200]
