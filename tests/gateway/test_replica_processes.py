"""Two ``mcpserve gateway`` processes on one private Redis, reached over HTTP: the 2026-07-28
retry carrying the answer is sent to the other replica and completes the call parked on the first;
a replica killed with SIGKILL while a call is parked on it costs that call only, at once."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.support import app_upstream, write_config
from tests.store.test_runtime_state import KEY
from tests.support.asgi import META, MODERN_HEADERS
from tests.support.processes import child_env, mcpserve_argv
from tests.support.redis_server import private_redis
from tests.support.servers import free_port, wait_healthy

pytestmark = pytest.mark.slow

ELICITING = {**META, "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}
CONFIRM = {"name": "test__confirm", "arguments": {"question": "Go?"}, "_meta": ELICITING}
YES = {"action": "accept", "content": {"ok": True}}


@contextmanager
def _gateway(
    config: Path, redis_url: str, prefix: str, log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = child_env(
        MCPSERVE_AUTH="none",
        MCPSERVE_RATE_LIMIT_PER_MINUTE="0",
        MCPSERVE_RATE_LIMIT_PER_HOUR="0",
        MCPSERVE_REDIS_URL=redis_url,
        MCPSERVE_STATE_PREFIX=prefix,
        MCPSERVE_REQUEST_STATE_KEYS=KEY,
    )
    argv = mcpserve_argv("gateway", "--config", str(config), "--host", "127.0.0.1", "--port", str(port))
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process)
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 30
        while "test__confirm" not in str(_post(url, "tools/list", {"_meta": META})):
            assert time.monotonic() < deadline, "the upstream was never listed"
            time.sleep(0.05)  # polling interval while the child starts, not synchronisation
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _post(url: str, method: str, params: dict[str, Any]) -> Any:
    headers = {**MODERN_HEADERS, "mcp-method": method}
    if "name" in params:
        headers["mcp-name"] = params["name"]
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = httpx.post(url, json=body, headers=headers, timeout=30)
    return reply.json()["result"]


def _retry(first: Any) -> dict[str, Any]:
    (key,) = first["inputRequests"]
    return {**CONFIRM, "inputResponses": {key: YES}, "requestState": first["requestState"]}


def test_a_retry_sent_to_the_other_gateway_process_completes_the_parked_call(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gateway.toml", [app_upstream()])
    with private_redis() as redis_server, ExitStack() as stack:
        prefix = f"gw-{uuid.uuid4().hex[:8]}:"
        (a, a_url), (_, b_url) = (
            stack.enter_context(_gateway(config, redis_server.url, prefix, tmp_path / f"{name}.log"))
            for name in ("a", "b")
        )
        first = _post(a_url, "tools/call", CONFIRM)
        assert first["resultType"] == "input_required"
        done = _post(b_url, "tools/call", _retry(first))
        assert (done["resultType"], done["content"][0]["text"]) == ("complete", "accept:True")

        parked = _post(a_url, "tools/call", CONFIRM)
        a.kill()
        a.wait(timeout=10)
        started = time.monotonic()
        lost = _post(b_url, "tools/call", _retry(parked))
        assert lost["isError"] is True
        assert "the gateway replica holding it stopped" in lost["content"][0]["text"]
        assert time.monotonic() - started < 1.0
