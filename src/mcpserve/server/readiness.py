"""Run readiness checks concurrently, each under its own short deadline.

A check is an async callable that raises when its dependency is unusable. The answer names each
check with "ok" or a short reason; reasons never carry credentials (URL user-info is masked).

A check is *critical* (the default) when traffic cannot be served without its dependency; a
failing non-critical check (say, Redis backing rate limits that fail open) leaves the service
ready but ``degraded``, so an orchestrator does not pull every replica at once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Final

import anyio

__all__ = ["run_checks", "readiness_report", "CHECK_TIMEOUT"]

CHECK_TIMEOUT: Final = 2.0
_USERINFO: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_MAX_REASON = 200


def _reason(exc: BaseException) -> str:
    message = _USERINFO.sub(r"\g<scheme>***@", str(exc))
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason[:_MAX_REASON]


async def run_checks(
    checks: Mapping[str, Callable[[], Awaitable[object]]], per_check: float = CHECK_TIMEOUT
) -> dict[str, str]:
    """``{name: "ok" | reason}`` for every check, run at the same time."""
    results: dict[str, str] = {}

    async def run_one(name: str, check: Callable[[], Awaitable[object]]) -> None:
        try:
            with anyio.fail_after(per_check):
                await check()
        except TimeoutError:
            results[name] = f"timed out after {per_check:g} s"
        except Exception as exc:
            results[name] = _reason(exc)
        else:
            results[name] = "ok"

    async with anyio.create_task_group() as group:
        for name, check in checks.items():
            group.start_soon(run_one, name, check)
    return {name: results[name] for name in checks}


def readiness_report(results: Mapping[str, str], noncritical: Collection[str] = ()) -> dict[str, Any]:
    """The ``/ready`` and ``mcpserve check`` body: ready unless a critical check failed.

    ``degraded`` appears (true) only when a non-critical check failed while the service is ready.
    """
    failed = {name for name, value in results.items() if value != "ok"}
    ready = not failed - set(noncritical)
    report: dict[str, Any] = {"status": "ready" if ready else "not ready"}
    if ready and failed:
        report["degraded"] = True
    report["checks"] = dict(results)
    return report
