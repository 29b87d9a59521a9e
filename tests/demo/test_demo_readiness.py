"""The demo's database readiness check requires its tables, not just a connection."""

from __future__ import annotations

import pytest

from mcpserve.config import Settings, load_settings
from mcpserve.demo.app import create_app
from mcpserve.demo.sql import DatabaseUnavailable
from mcpserve.runtime import check
from tests.support.postgres import SHARED_URL, unique_schema, with_search_path

from .pg_demo import DemoSchema

pytestmark = pytest.mark.anyio


def _settings(url: str) -> Settings:
    return load_settings(
        {"auth": "none", "database_url": url, "rate_limit_per_minute": 0, "rate_limit_per_hour": 0}
    )


async def test_a_search_path_naming_a_missing_schema_is_not_ready() -> None:
    app = create_app(_settings(with_search_path(SHARED_URL, unique_schema())))
    async with app.lifespan():
        with pytest.raises(DatabaseUnavailable, match="demo tables services, deployments, incidents"):
            await app.readiness_checks["database"]()


async def test_the_loaded_demo_schema_is_ready(demo_schema: DemoSchema) -> None:
    app = create_app(_settings(demo_schema.url))
    async with app.lifespan():
        await app.readiness_checks["database"]()


def test_check_reports_the_missing_schema() -> None:
    settings = _settings(with_search_path(SHARED_URL, unique_schema()))
    report = check(create_app(settings), settings)
    assert report["status"] == "not ready"
    assert "demo tables" in report["checks"]["database"]
