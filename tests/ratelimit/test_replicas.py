"""Two real mcpserve processes sharing the real Redis hold one budget under concurrent load.

Clients are told apart by ``X-Forwarded-For`` (both servers trust the loopback proxy), so one
pair of processes shows per-caller budgets too. Every refusal must be a 429 carrying the fields;
every admitted call carries them as well.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import orjson
import pytest
import redis

from tests.support.servers import running_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
APP = str(Path(__file__).with_name("limits_app.py"))
REDIS_URL = "redis://127.0.0.1:6379/0"
FIELDS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit", "ratelimit-policy")
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[str]]:
    prefix = f"test-replicas-{uuid.uuid4().hex}:"
    env = {
        "MCPSERVE_AUTH": "none",
        "MCPSERVE_REDIS_URL": REDIS_URL,
        "MCPSERVE_STATE": "memory",  # Redis for the budgets only: this test is about rate limits
        "MCPSERVE_REDIS_PREFIX": prefix,
        "MCPSERVE_TRUSTED_PROXIES": "127.0.0.1/32",
        "MCPSERVE_RATE_LIMIT_PER_MINUTE": "50",
        "MCPSERVE_RATE_LIMIT_PER_HOUR": "1000",
        # The hour budget is smaller than the minute one, so the hour window decides within the test.
        "MCPSERVE_TOOL_RATE_LIMITS": '{"costly": {"per_minute": 20, "per_hour": 6}}',
    }
    try:
        with contextlib.ExitStack() as stack:
            yield [stack.enter_context(running_server(APP, env=env)) for _ in range(2)]
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))  # only this test's keys: Redis is shared
        if keys:
            client.delete(*keys)
        client.close()


async def hammer(urls: list[str], caller: str, tool: str, total: int, connections: int = 20) -> list[Any]:
    """``total`` concurrent calls spread over both replicas and ``connections`` connections."""
    per_replica = httpx2.Limits(max_connections=connections // len(urls))
    clients = [httpx2.AsyncClient(limits=per_replica, timeout=30) for _ in urls]
    replies: list[Any] = []

    async def one(n: int) -> None:
        arguments = {"text": "x"} if tool == "echo" else {"n": n}
        body = {
            "jsonrpc": "2.0",
            "id": n,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, "_meta": META},
        }
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2026-07-28",
            "mcp-method": "tools/call",
            "mcp-name": tool,
            "x-forwarded-for": caller,
        }
        replies.append(
            await clients[n % len(urls)].post(
                urls[n % len(urls)], content=orjson.dumps(body), headers=headers
            )
        )

    try:
        async with anyio.create_task_group() as group:
            for n in range(total):
                group.start_soon(one, n)
    finally:
        for client in clients:
            await client.aclose()
    return replies


def check_fields(replies: list[Any]) -> None:
    for reply in replies:
        assert all(name in reply.headers for name in FIELDS), reply.headers
        if reply.status_code == 429:
            retry = int(reply.headers["retry-after"])
            error = reply.json()["error"]
            assert error["code"] == -31001
            assert error["data"] == {"retryAfter": retry}
            assert reply.json()["id"] is not None
        else:
            assert reply.status_code == 200
            assert "retry-after" not in reply.headers
            assert "error" not in reply.json()


async def test_two_replicas_allow_exactly_the_minute_budget(replicas: list[str]) -> None:
    replies = await hammer(replicas, "203.0.113.1", "echo", 200)
    statuses = [r.status_code for r in replies]
    assert statuses.count(200) == 50  # not 2 x 50: both processes draw on one budget
    assert statuses.count(429) == 150
    check_fields(replies)
    limited = next(r for r in replies if r.status_code == 429)
    assert limited.headers["x-ratelimit-limit"] == "50"
    assert 1 <= int(limited.headers["retry-after"]) <= 61
    # Another caller has a budget of its own.
    other = await hammer(replicas, "203.0.113.2", "echo", 5)
    assert [r.status_code for r in other] == [200] * 5


async def test_per_tool_hour_budget_across_replicas(replicas: list[str]) -> None:
    replies = await hammer(replicas, "203.0.113.3", "costly", 40)
    statuses = [r.status_code for r in replies]
    assert statuses.count(200) == 6  # the tool's hour budget, smaller than its minute budget
    check_fields(replies)
    limited = next(r for r in replies if r.status_code == 429)
    assert limited.headers["x-ratelimit-limit"] == "6"
    assert int(limited.headers["retry-after"]) > 3500  # the hour window decides
    assert '"costly/hour";q=6;w=3600' in limited.headers["ratelimit-policy"]
    # The caller's other tools only count against the overall budget (6 of 50 used so far).
    echo = await hammer(replicas, "203.0.113.3", "echo", 1)
    assert echo[0].status_code == 200
    assert echo[0].headers["x-ratelimit-remaining"] == "43"
