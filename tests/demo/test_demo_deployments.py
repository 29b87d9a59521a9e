"""deployment_status over the bundled demo database (SQLite; tests/demo/test_demo_postgres.py compares)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpserve.demo.deployments import UnknownService, deployment_status
from mcpserve.demo.sql import SQLiteDatabase

from .support import sha256

pytestmark = pytest.mark.anyio


async def test_status_of_a_service_mid_rollout(demo_db: Path) -> None:
    before = sha256(demo_db)
    status = await deployment_status(SQLiteDatabase(demo_db), "gateway")

    assert status["service"]["name"] == "gateway"
    assert status["service"]["team"] == "platform"
    assert status["service"]["tier"] == 1
    assert set(status["environments"]) == {"production", "staging"}

    production = status["environments"]["production"]
    assert production["latest_deployment"]["status"] == "in_progress"
    assert production["latest_deployment"]["finished_at"] is None
    # The rollout has not finished, so production still runs the previous successful version.
    assert production["running_version"] != production["latest_deployment"]["version"]
    staging = status["environments"]["staging"]
    assert staging["running_version"] == production["latest_deployment"]["version"]
    assert production["previous_version"] not in (None, production["running_version"])

    recent = status["recent_deployments"]
    assert len(recent) == 5
    assert [d["started_at"] for d in recent] == sorted((d["started_at"] for d in recent), reverse=True)
    assert set(recent[0]) >= {"version", "environment", "status", "started_at", "deployed_by", "commit_sha"}
    assert sha256(demo_db) == before


async def test_open_incidents_exclude_resolved_ones(demo_db: Path) -> None:
    incidents = (await deployment_status(SQLiteDatabase(demo_db), "checkout-api"))["open_incidents"]
    assert [i["title"] for i in incidents] == ["Elevated p99 latency on GET /cart"]
    assert incidents[0]["status"] == "open"
    assert incidents[0]["runbook"] == "high-latency-triage.md"


async def test_mitigated_incidents_count_as_open(demo_db: Path) -> None:
    incidents = (await deployment_status(SQLiteDatabase(demo_db), "payments"))["open_incidents"]
    assert [i["status"] for i in incidents] == ["mitigated"]


async def test_running_version_skips_a_rolled_back_release(demo_db: Path) -> None:
    status = await deployment_status(SQLiteDatabase(demo_db), "notifications")
    history = [d for d in status["recent_deployments"] if d["environment"] == "production"]
    rolled_back = next(d for d in history if d["status"] == "rolled_back")
    production = status["environments"]["production"]
    assert rolled_back["version"] not in (production["running_version"], production["previous_version"])


async def test_surrounding_whitespace_is_ignored(demo_db: Path) -> None:
    assert (await deployment_status(SQLiteDatabase(demo_db), "  search\n"))["service"]["name"] == "search"


async def test_unknown_service_lists_known_names(demo_db: Path) -> None:
    with pytest.raises(UnknownService) as caught:
        await deployment_status(SQLiteDatabase(demo_db), "checkout")
    message = str(caught.value)
    assert "unknown service 'checkout'" in message
    assert "did you mean 'checkout-api'?" in message
    for name in ("auth-service", "checkout-api", "gateway", "payments", "reporting"):
        assert name in message
    assert caught.value.known == sorted(caught.value.known)
    assert isinstance(caught.value, LookupError)


async def test_injection_attempt_is_just_an_unknown_name(demo_db: Path) -> None:
    with pytest.raises(UnknownService):
        await deployment_status(SQLiteDatabase(demo_db), "x' OR '1'='1")


@pytest.mark.parametrize("service", ["", "   ", "a" * 101])
async def test_invalid_names_are_rejected(demo_db: Path, service: str) -> None:
    with pytest.raises(ValueError, match="service"):
        await deployment_status(SQLiteDatabase(demo_db), service)
