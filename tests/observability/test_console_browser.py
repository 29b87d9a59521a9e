"""The operator console in a real browser: Debian's headless Chromium driven by Playwright (no
browser download), against a real server after a run of traffic. The figures shown must equal
/metrics; a principal without mcpserve:admin is refused; a screenshot is kept with the test's
files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from prometheus_client.parser import text_string_to_metric_families

from mcpserve.admin.figures import quantile
from mcpserve.admin.page import format_seconds
from tests.admin.support import ADMIN, USER
from tests.observability.live import Live, drive_traffic, live_server, scrape

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.slow


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "chromium is missing: make deploy-tools installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield launched
        finally:
            launched.close()


def figure(page: Page, key: str) -> str:
    return page.locator(f'[data-figure="{key}"]').inner_text().strip()


def expected_figures(exposition: str) -> dict[str, str]:
    """What the console must show, computed from /metrics alone."""
    requests = errors = refused = 0.0
    calls: dict[str, float] = {}
    refused_by_tool: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    sessions = None
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "mcp_requests_total":
                requests += value
            elif name == "mcp_server_operation_duration_seconds_count" and labels["error_type"] not in (
                "",
                "rate_limited",
            ):
                errors += value
            elif name == "mcp_rate_limited_calls_total":
                refused += value
            elif name == "mcp_tool_calls_total":
                calls[labels["tool"]] = calls.get(labels["tool"], 0) + value
                if labels["status"] == "rate_limited":
                    refused_by_tool[labels["tool"]] = refused_by_tool.get(labels["tool"], 0) + value
            elif name == "mcp_tool_call_duration_seconds_bucket" and labels["tool"] == "search_docs":
                buckets.append((float(labels["le"]), value))
            elif name == "mcp_active_sessions":
                sessions = value
    return {
        "requests_total": str(int(requests)),
        "errors_total": str(int(errors)),
        "rate_limit_refusals": str(int(refused)),
        "tool.search_docs.calls": str(int(calls["search_docs"])),
        "tool.unknown.calls": str(int(calls["unknown"])),
        "tool.search_docs.refused": str(int(refused_by_tool["search_docs"])),
        "tool.search_docs.p50": format_seconds(quantile(0.5, buckets)),
        "tool.search_docs.p99": format_seconds(quantile(0.99, buckets)),
        "sessions_active": str(int(sessions or 0)),
    }


def refused(browser: Browser, live: Live, key: str) -> tuple[int, str]:
    context = browser.new_context(http_credentials={"username": "operator", "password": key})
    try:
        page = context.new_page()
        response = page.goto(live.ops_url + "/admin")
        assert response is not None
        return response.status, page.content()
    finally:
        context.close()


def without_credentials(browser: Browser, live: Live) -> None:
    """No credentials: the console asks for them (401, Basic); under automation Chromium has no
    dialog to show, so the navigation fails with its authentication error."""
    context = browser.new_context()
    try:
        answer = context.request.get(live.ops_url + "/admin")
        assert answer.status == 401
        challenges = [h["value"] for h in answer.headers_array if h["name"].lower() == "www-authenticate"]
        assert any(c.startswith('Basic realm="mcpserve admin"') for c in challenges), challenges
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            context.new_page().goto(live.ops_url + "/admin")
    finally:
        context.close()


def test_console_in_chromium_matches_metrics_and_refuses_without_the_admin_scope(
    browser: Browser, tmp_path: Path
) -> None:
    with live_server(tmp_path) as live:
        counts = drive_traffic(live)
        # Refused logins: no credentials at all, then a valid key without the admin scope.
        without_credentials(browser, live)
        status, content = refused(browser, live, live.keys[USER])
        assert status == 403
        assert "mcpserve:admin" in content
        assert live.keys[USER] not in content

        context = browser.new_context(
            http_credentials={"username": "operator", "password": live.keys[ADMIN]},
            viewport={"width": 1400, "height": 1000},
        )
        problems: list[str] = []
        page = context.new_page()
        page.on("console", lambda message: _note(problems, message))
        page.on("pageerror", lambda error: problems.append(str(error)))
        response = page.goto(live.ops_url + "/admin")
        assert response is not None and response.status == 200
        # The script refreshed the figures from /admin/api/overview with the page's credentials.
        expect(page.locator("body")).to_have_attribute("data-refreshed", "true", timeout=15_000)
        assert "failed" not in page.locator("#updated").inner_text()
        expected = expected_figures(scrape(live))
        shown = {key: figure(page, key) for key in expected}
        assert shown == expected
        assert int(shown["rate_limit_refusals"]) == counts["rate_limited"]
        assert page.locator("text=search_docs").count() >= 1
        assert figure(page, "readiness") == "ready"
        assert (
            page.get_by_role("cell", name="redis", exact=True).count() == 1
        )  # the rate limiter's Redis check
        assert page.get_by_role("cell", name=USER, exact=True).count() == 1  # the principal it limited
        assert page.locator(".ident").inner_text().startswith("mcpserve-demo")
        screenshot = tmp_path / "artifacts" / "console.png"
        screenshot.parent.mkdir()
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 20_000
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert problems == []  # no script error, no Content-Security-Policy violation
        context.close()


def _note(problems: list[str], message: ConsoleMessage) -> None:
    if message.type in ("error", "warning"):
        problems.append(message.text)
