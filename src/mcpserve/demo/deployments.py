"""Deployment status of one service, assembled from the demo operations database.

Queries are fixed and parameterised (portable between SQLite and PostgreSQL), so they go through
``ReadOnlyDatabase.fetch`` rather than the untrusted-SQL checks; only the service name comes from the
caller, and it is validated and bound as a parameter.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from mcpserve.demo.sql import ReadOnlyDatabase

__all__ = ["MAX_SERVICE_NAME_LENGTH", "RECENT_DEPLOYMENTS", "UnknownService", "deployment_status"]

MAX_SERVICE_NAME_LENGTH = 100
RECENT_DEPLOYMENTS = 5

_DEPLOYMENT_COLUMNS = (
    "id, version, environment, status, started_at, finished_at, deployed_by, commit_sha, notes"
)
_SERVICE_SQL = (
    "SELECT name, team, tier, repository, language, on_call_channel, slo_target, description "
    "FROM services WHERE name = ?"
)
# Ties on started_at are broken by id so "latest" is always a single, stable row.
_LATEST_PER_ENVIRONMENT_SQL = f"""
SELECT {_DEPLOYMENT_COLUMNS} FROM (
    SELECT *, row_number() OVER (PARTITION BY environment ORDER BY started_at DESC, id DESC) AS place
    FROM deployments WHERE service = ?
) AS ranked WHERE place = 1 ORDER BY environment
"""  # noqa: S608 - only constant column names are interpolated
_SUCCEEDED_VERSIONS_SQL = """
SELECT environment, version FROM deployments WHERE service = ? AND status = 'succeeded'
ORDER BY started_at DESC, id DESC
"""
_RECENT_SQL = (
    f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE service = ? "  # noqa: S608 - constant columns
    "ORDER BY started_at DESC, id DESC LIMIT ?"
)
_OPEN_INCIDENTS_SQL = """
SELECT id, severity, title, status, opened_at, mitigated_at, commander, summary, runbook
FROM incidents WHERE service = ? AND status != 'resolved'
ORDER BY severity, opened_at
"""


class UnknownService(LookupError):
    """No service by that name; the message lists the services that exist."""

    def __init__(self, service: str, known: Sequence[str]) -> None:
        self.service = service
        self.known = list(known)
        close = difflib.get_close_matches(service, self.known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(f"unknown service {service!r}{hint}; known services are: {', '.join(self.known)}")


async def deployment_status(database: ReadOnlyDatabase, service: str) -> dict[str, Any]:
    """The service's details; per environment the latest deployment, the running version and the
    previous one; its last deployments (newest first); and its incidents that are not yet resolved
    (open or mitigated).

    Raises ValueError for an empty or over-long name and :class:`UnknownService` for a name that
    is not in the database.
    """
    name = _validated_name(service)
    info = await database.fetch(_SERVICE_SQL, (name,))
    if not info:
        known = [row["name"] for row in await database.fetch("SELECT name FROM services ORDER BY name")]
        raise UnknownService(name, known)
    return {
        "service": info[0],
        "environments": await _environments(database, name),
        "recent_deployments": await database.fetch(_RECENT_SQL, (name, RECENT_DEPLOYMENTS)),
        "open_incidents": await database.fetch(_OPEN_INCIDENTS_SQL, (name,)),
    }


def _validated_name(service: str) -> str:
    if not isinstance(service, str):
        raise ValueError("service must be a string")
    name = service.strip()
    if not name:
        raise ValueError("service must be a non-empty service name, e.g. 'checkout-api'")
    if len(name) > MAX_SERVICE_NAME_LENGTH:
        raise ValueError(f"service names are at most {MAX_SERVICE_NAME_LENGTH} characters")
    return name


async def _environments(database: ReadOnlyDatabase, service: str) -> dict[str, dict[str, Any]]:
    """Per environment: the latest deployment attempt, the version running (last successful
    deployment) and the version before it, which is what a rollback would return to.

    The latest attempt differs from the running version while a rollout is in progress or after
    one failed or was rolled back.
    """
    versions = _successful_versions(await database.fetch(_SUCCEEDED_VERSIONS_SQL, (service,)))
    environments = {}
    for latest in await database.fetch(_LATEST_PER_ENVIRONMENT_SQL, (service,)):
        history = versions.get(latest["environment"], [])
        environments[latest["environment"]] = {
            "running_version": history[0] if history else None,
            "previous_version": history[1] if len(history) > 1 else None,
            "latest_deployment": latest,
        }
    return environments


def _successful_versions(rows: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Distinct successfully deployed versions per environment, newest first."""
    versions: dict[str, list[str]] = {}
    for row in rows:
        seen = versions.setdefault(row["environment"], [])
        if row["version"] not in seen:  # a redeploy of the same version is not a rollback target
            seen.append(row["version"])
    return versions
