"""The console page, rendered on the server from the same data the JSON API returns.

Every value is escaped. Figures that change between polls carry ``data-figure`` keys; the
page's script replaces their text from the API's ``display`` map (formatted here, once), and
reloads the page when the set of rows changes (``layout``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from html import escape
from typing import Any

import orjson

__all__ = [
    "display_figures",
    "format_duration",
    "format_seconds",
    "layout_signature",
    "render_page",
    "render_refusal",
]

_NONE = "\u2013"  # an en dash: no value yet
# The page lists the newest errors; /admin/api/overview returns every one kept.
_ERRORS_SHOWN = 25


def format_seconds(value: float | None) -> str:
    if value is None:
        return _NONE
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def _per_second(value: float | None) -> str:
    return _NONE if value is None else f"{value:.2f}/s"


def format_duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


def _when(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch)) + " UTC"


def display_figures(data: dict[str, Any]) -> dict[str, str]:
    """Each live figure's text, by its ``data-figure`` key."""
    traffic, sessions, flight = data["traffic"], data["sessions"], data["in_flight"]
    shown = {
        "uptime": format_duration(data["uptime_seconds"]),
        "requests_total": str(traffic["requests_total"]),
        "errors_total": str(traffic["errors_total"]),
        "requests_per_second": _per_second(traffic["requests_per_second"]),
        "errors_per_second": _per_second(traffic["errors_per_second"]),
        "sessions_active": _NONE if sessions["active"] is None else str(sessions["active"]),
        "in_flight_requests": str(flight["requests"]),
        "sse_streams": str(flight["sse_streams"]),
        "rate_limit_refusals": str(data["rate_limits"]["refusals_total"]),
        "readiness": data["readiness"]["status"],
    }
    for tool in data["tools"]:
        key = "tool." + tool["name"]
        shown[key + ".calls"] = str(tool["calls"])
        shown[key + ".errors"] = str(tool["errors"])
        shown[key + ".refused"] = str(tool["refused"])
        shown[key + ".p50"] = format_seconds(tool["p50_seconds"])
        shown[key + ".p99"] = format_seconds(tool["p99_seconds"])
    return shown


def layout_signature(data: dict[str, Any]) -> str:
    """Changes when rows come or go (a tool, an error, a limited principal, a check's result)."""
    parts = [
        [t["name"] for t in data["tools"]],
        [e["request_id"] for e in data["recent_errors"]],
        [p["principal"] for p in data["rate_limits"]["limited_principals"]],
        data["readiness"]["checks"],
        data["readiness"]["draining"],
    ]
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _figure(key: str, shown: dict[str, str], css: str = "") -> str:
    classes = f' class="{css}"' if css else ""
    return f'<span data-figure="{escape(key)}"{classes}>{escape(shown[key])}</span>'


def _card(label: str, key: str, shown: dict[str, str], note: str = "") -> str:
    extra = f'<div class="note">{escape(note)}</div>' if note else ""
    value = f'<div class="value">{_figure(key, shown)}</div>'
    return f'<div class="card"><div class="label">{escape(label)}</div>{value}{extra}</div>'


def _table(headers: Iterable[str], rows: list[str], empty: str, css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = (
        "".join(rows)
        or f'<tr><td class="empty" colspan="{len(list(headers)) or 1}">{escape(empty)}</td></tr>'
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cells(*values: str) -> str:
    return "<tr>" + "".join(f"<td>{v}</td>" for v in values) + "</tr>"


def _badge(text: str, tone: str) -> str:
    return f'<span class="badge {tone}">{escape(text)}</span>'


def _readiness(readiness: dict[str, Any]) -> str:
    rows = []
    for name, check in readiness["checks"].items():
        ok = check["result"] == "ok"
        tone = "ok" if ok else ("bad" if check["critical"] else "warn")
        rows.append(
            _cells(
                escape(name),
                _badge("ok" if ok else "failing", tone),
                "critical" if check["critical"] else "non-critical",
                f"<code>{escape(check['result'])}</code>" if not ok else "",
            )
        )
    return _table(("Check", "State", "Kind", "Reason"), rows, "No readiness checks registered")


def _tools(tools: list[dict[str, Any]], shown: dict[str, str]) -> str:
    rows = []
    for tool in tools:
        key = "tool." + tool["name"]
        limits = tool["limits"]
        limit_text = (
            ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in limits.items() if v)
            if limits
            else "policy default"
        )
        scopes = (
            " ".join(f"<code>{escape(s)}</code>" for s in tool["scopes"]) or '<span class="muted">none</span>'
        )
        timeout = tool["timeout_seconds"]
        rows.append(
            _cells(
                f"<strong>{escape(tool['name'])}</strong>"
                if tool["registered"]
                else "<em>unknown names</em>",
                _figure(key + ".calls", shown, "num"),
                _figure(key + ".errors", shown, "num"),
                _figure(key + ".refused", shown, "num"),
                _figure(key + ".p50", shown, "num"),
                _figure(key + ".p99", shown, "num"),
                scopes,
                escape(limit_text) if tool["registered"] else "",
                escape(f"{timeout:g} s") if timeout is not None else "",
            )
        )
    return _table(
        ("Tool", "Calls", "Errors", "Refused", "p50", "p99", "Scopes", "Rate limits", "Timeout"),
        rows,
        "No tools",
        "tools",
    )


def _rate_limits(limits: dict[str, Any]) -> str:
    if not limits["enabled"]:
        policy = '<p class="muted">Rate limiting is off.</p>'
    else:
        policy = (
            f"<p>Per principal: <strong>{limits['per_minute'] or 'no limit'}</strong> per minute, "
            f"<strong>{limits['per_hour'] or 'no limit'}</strong> per hour; counters in "
            f"<strong>{escape(str(limits['backend']))}</strong>.</p>"
        )
    rows = [
        _cells(escape(p["principal"]), str(p["refusals"]), escape(_when(p["last_refused"])))
        for p in limits["limited_principals"]
    ]
    window = int(limits["limited_window_seconds"])
    return policy + _table(
        ("Principal", "Refusals", "Last refused"), rows, f"No principal refused in the last {window} s"
    )


def _errors(errors: list[dict[str, Any]]) -> str:
    errors = errors[:_ERRORS_SHOWN]
    rows = [
        _cells(
            f'<span class="nowrap">{escape(_when(e["at"]))}</span>',
            f'<code class="nowrap">{escape(e["request_id"])}</code>',
            escape(e["principal"] or _NONE),
            escape(e["method"]),
            escape(e["tool"] or _NONE),
            str(e["status"]),
            _badge(e["outcome"], "bad"),
            f"<code>{escape(e['error_id'])}</code>" if e["error_id"] else "",
        )
        for e in errors
    ]
    return _table(
        ("Time", "Request id", "Principal", "Method", "Tool", "HTTP", "Error", "Error id"),
        rows,
        "No errors since start",
    )


def _config(config: dict[str, Any]) -> str:
    rows = [
        _cells(f"<code>{escape(name)}</code>", f"<code>{escape(orjson.dumps(value).decode())}</code>")
        for name, value in sorted(config.items())
    ]
    return _table(("Setting", "Value"), rows, "", "config")


def _head(title: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel="icon" href="/admin/assets/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/admin/assets/console.css"></head>'
    )


def _section(title: str, body: str, sub: str = "") -> str:
    aside = f' <span class="sub">{sub}</span>' if sub else ""
    return f"<section><h2>{escape(title)}{aside}</h2>{body}</section>"


def _meta(label: str, value: str) -> str:
    return f'<div><span class="label">{escape(label)}</span> {value}</div>'


def render_page(data: dict[str, Any], config: dict[str, Any]) -> str:
    shown = display_figures(data)
    ident, readiness = data["identity"], data["readiness"]
    state = "draining" if readiness["draining"] else readiness["status"]
    tone = {"ready": "ok", "not ready": "bad", "draining": "warn"}.get(state, "warn")
    if readiness["degraded"] and state == "ready":
        state, tone = "degraded", "warn"
    errors = data["recent_errors"]
    return (
        _head(f"{ident['server']} · mcpserve console")
        + f'<body data-layout="{layout_signature(data)}">'
        + '<header class="top"><div class="brand">mcpserve <span>console</span></div>'
        + f'<div class="ident"><strong>{escape(ident["server"])}</strong> {escape(ident["server_version"])}'
        + f" · mcpserve {escape(ident['mcpserve_version'])} · pid {ident['pid']}</div>"
        + f'<div class="state">{_badge(state, tone)}</div></header><main>'
        + '<section class="meta">'
        + _meta("Endpoint", f"<code>{escape(ident['listen'] + ident['endpoint'])}</code>")
        + _meta("Authentication", escape(", ".join(ident["authentication"])))
        + _meta("Signed in as", escape(ident["viewer"]))
        + _meta("Up", _figure("uptime", shown))
        + _meta("Updated", f'<span id="updated">{escape(_when(time.time()))}</span>')
        + "</section>"
        + '<section class="cards">'
        + _card("Requests / s", "requests_per_second", shown)
        + _card("Errors / s", "errors_per_second", shown)
        + _card("Requests", "requests_total", shown, "since start")
        + _card("Errors", "errors_total", shown, "since start")
        + _card("Sessions", "sessions_active", shown, f"of {data['sessions']['max']} (2025 era)")
        + _card("In flight", "in_flight_requests", shown)
        + _card("SSE streams", "sse_streams", shown)
        + _card("Rate-limited", "rate_limit_refusals", shown, "calls refused since start")
        + "</section>"
        + _section("Readiness", _readiness(readiness), _figure("readiness", shown))
        + _section("Tools", _tools(data["tools"], shown), "latency since start")
        + '<div class="split">'
        + _section("Rate limits", _rate_limits(data["rate_limits"]))
        + _section(
            "Recent errors",
            _errors(errors),
            f"newest {min(len(errors), _ERRORS_SHOWN)} of {len(errors)} kept",
        )
        + "</div>"
        + _section(
            "Configuration",
            f"<details><summary>{len(config)} settings</summary>{_config(config)}</details>",
            "effective, secrets masked",
        )
        + '</main><script src="/admin/assets/console.js"></script></body></html>'
    )


def render_refusal(status: int, message: str) -> str:
    return (
        _head("mcpserve console")
        + '<body><header class="top"><div class="brand">mcpserve <span>console</span></div></header>'
        + f'<main><section class="refusal"><h2>{status}</h2><p>{escape(message)}</p>'
        + "<p>Sign in with a token that holds the <code>mcpserve:admin</code> scope.</p>"
        + "</section></main></body></html>"
    )
