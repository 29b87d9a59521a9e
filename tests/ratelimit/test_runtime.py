"""Rate limits in the composition root: validation against the registered tools, Redis lifecycle."""

from __future__ import annotations

import pytest

from mcpserve import MCPServer
from mcpserve.config import load_settings
from mcpserve.errors import ConfigError
from mcpserve.ratelimit.memory import MemoryLimiter
from mcpserve.ratelimit.redis_backend import RedisLimiter
from mcpserve.runtime import build_rate_gate
from tests.ratelimit.limits_app import app

pytestmark = pytest.mark.anyio


def test_unknown_tool_in_tool_limits_is_a_config_error() -> None:
    settings = load_settings({"auth": "none", "tool_rate_limits": {"costly": {"concurrency": 2}, "nope": {}}})
    with pytest.raises(ConfigError) as raised:
        build_rate_gate(app, settings)
    assert raised.value.variable == "MCPSERVE_TOOL_RATE_LIMITS"
    assert "nope" in str(raised.value)


def test_in_memory_unless_redis_is_configured() -> None:
    gate = build_rate_gate(app, load_settings({"auth": "none", "tool_rate_limits": {"echo": {}}}))
    assert gate is not None
    assert isinstance(gate.limiter, MemoryLimiter)
    assert gate.tools == {}  # an entry with every limit 0 limits nothing
    off = {"auth": "none", "rate_limit_per_minute": 0, "rate_limit_per_hour": 0}
    assert build_rate_gate(app, load_settings(off)) is None


async def test_redis_pool_opens_at_startup_is_ready_and_closes_at_shutdown() -> None:
    server = MCPServer("redis-lifecycle")  # a fresh server: lifecycle hooks accumulate
    settings = load_settings(
        {
            "auth": "none",
            "redis_url": "redis://127.0.0.1:6379/0",
            "redis_prefix": "test-rt:",
            "state": "memory",
        }
    )
    gate = build_rate_gate(server, settings)
    assert gate is not None
    limiter = gate.limiter
    assert isinstance(limiter, RedisLimiter)
    async with server.lifespan():
        await server.readiness_checks["redis"]()
    with pytest.raises(RuntimeError, match="not open"):
        await server.readiness_checks["redis"]()
