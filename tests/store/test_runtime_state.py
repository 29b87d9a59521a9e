"""runtime.build_state: the backend MCPSERVE_STATE selects, its refusals, and /ready with Redis."""

from __future__ import annotations

import subprocess
import uuid

import pytest
import redis

from mcpserve.config import load_settings
from mcpserve.errors import ConfigError
from mcpserve.runtime import build_http_app, build_state
from mcpserve.server.app import MCPServer
from mcpserve.store.cached import CachedSessionStore
from mcpserve.store.memory import MemoryEventStore, MemoryMessageBus, MemorySessionStore
from mcpserve.store.redis_bus import RedisMessageBus
from mcpserve.store.redis_store import RedisEventStore, RedisSessionStore
from tests.support.polling import eventually
from tests.support.processes import child_env, mcpserve_argv
from tests.support.redis_server import private_redis

REDIS_URL = "redis://127.0.0.1:6379/0"
KEY = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE"  # 32 bytes, base64url: a test key only


def test_memory_is_the_default_and_carries_the_caps() -> None:
    server = MCPServer("state")
    settings = load_settings({"auth": "none", "max_sessions_per_principal": 3, "session_max_events": 9})
    assert settings.state_backend == "memory"
    sessions, events, bus = build_state(server, settings)
    assert isinstance(sessions, MemorySessionStore) and isinstance(events, MemoryEventStore)
    assert bus is server.bus and isinstance(bus, MemoryMessageBus)
    assert sessions.max_events == 9


def test_redis_is_the_default_when_a_redis_url_is_set() -> None:
    server = MCPServer("state")
    settings = load_settings({"auth": "none", "redis_url": REDIS_URL, "request_state_keys": KEY})
    assert settings.state_backend == "redis"
    sessions, events, bus = build_state(server, settings)
    assert isinstance(sessions, CachedSessionStore) and isinstance(sessions.inner, RedisSessionStore)
    assert isinstance(events, RedisEventStore)
    assert isinstance(bus, RedisMessageBus) and server.bus is bus  # list changes reach every replica
    uncached = load_settings({**settings.model_dump(), "session_cache_ttl": 0})
    assert isinstance(build_state(MCPServer("state"), uncached)[0], RedisSessionStore)
    explicit = load_settings({"auth": "none", "redis_url": REDIS_URL, "state": "memory"})
    assert explicit.state_backend == "memory"


def test_redis_state_needs_a_url_and_shared_request_state_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        build_state(MCPServer("s"), load_settings({"auth": "none", "state": "redis"}))
    assert caught.value.variable == "MCPSERVE_REDIS_URL"
    with pytest.raises(ConfigError) as caught:
        build_state(MCPServer("s"), load_settings({"auth": "none", "redis_url": REDIS_URL}))
    assert caught.value.variable == "MCPSERVE_REQUEST_STATE_KEYS"


def test_a_prefix_with_a_hash_tag_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"auth": "none", "state_prefix": "a{b}:"})
    assert caught.value.variable == "MCPSERVE_STATE_PREFIX"


@pytest.mark.slow
def test_serve_exits_2_naming_the_keys_variable() -> None:
    completed = subprocess.run(
        mcpserve_argv("serve", "--auth", "none", "--port", "0"),
        env=child_env(MCPSERVE_REDIS_URL=REDIS_URL),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "MCPSERVE_REQUEST_STATE_KEYS" in completed.stderr.decode().strip().splitlines()[-1]


@pytest.mark.anyio
@pytest.mark.slow
async def test_ready_fails_while_redis_is_down_and_recovers_by_itself() -> None:
    with private_redis() as server:
        settings = load_settings(
            {
                "auth": "none",
                "redis_url": server.url,
                "request_state_keys": KEY,
                "state_prefix": f"test-{uuid.uuid4().hex}:",
                "rate_limit_per_minute": 0,
                "rate_limit_per_hour": 0,
            }
        )
        app = build_http_app(MCPServer("ready"), settings)

        async def ready() -> bool:
            return (await app.ops.readiness())[0] == 200

        async with app.endpoint.dispatcher.server.lifespan():
            assert await ready()
            server.stop()
            code, report = await app.ops.readiness()
            assert code == 503 and report["checks"]["sessions"].startswith("StoreUnavailable")
            server.start()
            await eventually(ready, within=5)
        with redis.Redis.from_url(server.url) as client:
            assert client.ping()
