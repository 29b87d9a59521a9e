"""The first hour of a new user: the README's commands as written, and what start-up says.

Run through the installed console script (``.venv/bin/mcpserve``), not ``python -m``, because
that is what the README tells a user to type, and ``python -m`` would put the current folder on
``sys.path`` by itself.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from mcpserve.cli import main
from mcpserve.config import load_settings
from mcpserve.loader import load_app
from tests.ops.support import make_app
from tests.support.asgi import META, MODERN_HEADERS, request, rpc
from tests.support.logcheck import check_log_lines
from tests.support.processes import ROOT, child_env
from tests.support.servers import free_port, wait_healthy

pytestmark = pytest.mark.anyio

CONSOLE = Path(sys.executable).parent / "mcpserve"
README = (ROOT / "README.md").read_text()
KEY = "first-hour-key-0123456789"


def _section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def _readme_commands() -> list[list[str]]:
    """The shell lines of "Write a server", comments dropped, ``.venv/bin`` made this venv's."""
    (shell,) = _blocks(_section("Write a server"), "sh")
    commands = []
    for line in shell.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            assert words[0] == ".venv/bin/mcpserve", line
            commands.append([str(CONSOLE), *words[1:]])
    return commands


@pytest.fixture
def app_folder(tmp_path: Path) -> Path:
    """A fresh folder holding the README's server as app.py, as a user would save it."""
    (code,) = _blocks(_section("Write a server"), "python")
    (tmp_path / "app.py").write_text(code)
    return tmp_path


@contextmanager
def _serving(command: list[str], cwd: Path, log: Path, **env: str) -> Iterator[str]:
    """Start ``command`` in its own process group (make forks the server); stop the group after."""
    port = env.setdefault("MCPSERVE_PORT", str(free_port()))
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=child_env(**env), stdout=output, stderr=output, start_new_session=True
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}/health", process, deadline=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _mcpserve(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """The console script, run to completion from ``cwd`` (a command expected to end by itself)."""
    return subprocess.run(
        [str(CONSOLE), *args], cwd=cwd, capture_output=True, env=child_env(**env), timeout=60, check=False
    )


def _call_add(base: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = rpc("tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}, "_meta": META})
    merged = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": "add", **(headers or {})}
    return httpx.post(f"{base}/mcp", content=body, headers=merged, timeout=10)


@pytest.mark.slow
def test_the_readme_server_serves_over_http_as_written(app_folder: Path) -> None:
    http, stdio = _readme_commands()
    assert stdio[-2:] == ["--transport", "stdio"]
    log = app_folder / "server.log"
    with _serving(http, app_folder, log) as base:
        answer = _call_add(base)
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["structuredContent"] == {"result": 5}
    lines = check_log_lines(log.read_bytes())
    assert any(str(line["event"]).startswith(f"listening on {base} ") for line in lines)
    warnings = [line for line in lines if line["level"] == "warning"]
    assert len(warnings) == 1
    assert str(warnings[0]["event"]).startswith("no authentication configured: serving 127.0.0.1")


@pytest.mark.slow
def test_the_readme_server_serves_over_stdio_as_written(app_folder: Path) -> None:
    _, stdio = _readme_commands()
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 2, "b": 3}, "_meta": META},
        },
    ]
    completed = subprocess.run(
        stdio,
        cwd=app_folder,
        input=b"".join(orjson.dumps(m) + b"\n" for m in messages),
        capture_output=True,
        env=child_env(),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-500:]
    (answer,) = [orjson.loads(line) for line in completed.stdout.splitlines()]
    assert answer["result"]["structuredContent"] == {"result": 5}


@pytest.mark.slow
def test_make_serve_honours_the_api_keys_a_user_configures(tmp_path: Path) -> None:
    port = str(free_port())
    command = ["make", "-s", "serve", f"PORT={port}"]
    with _serving(command, ROOT, tmp_path / "log", MCP_API_KEYS=KEY, MCPSERVE_PORT=port) as base:
        assert _call_add(base).status_code == 401
        assert _call_add(base, {"authorization": f"Bearer {KEY}"}).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["app", "app:app", "app.py", "./app.py:app"])
def test_the_app_argument_takes_a_path_a_module_and_module_attribute(app_folder: Path, spec: str) -> None:
    completed = _mcpserve(app_folder, "check", spec)
    assert completed.returncode == 0, completed.stderr.decode()[-500:]
    assert orjson.loads(completed.stdout)["status"] == "ready"


def test_the_loader_finds_modules_in_the_current_folder(
    app_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (app_folder / "first_hour_app.py").write_text((app_folder / "app.py").read_text())
    monkeypatch.chdir(app_folder)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(app_folder))])
    monkeypatch.delitem(sys.modules, "first_hour_app", raising=False)
    settings = load_settings({"auth": "none"})
    assert load_app("first_hour_app", settings).name == "ops"
    assert load_app("first_hour_app:app", settings).name == "ops"


@pytest.mark.slow
def test_a_port_in_use_exits_2_with_one_line_last_and_nothing_started(app_folder: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        completed = _mcpserve(app_folder, "serve", "app.py", "--port", port)
    assert completed.returncode == 2
    stderr = completed.stderr.decode()
    assert stderr.splitlines()[-1] == (
        f"mcpserve: invalid configuration: --port: 127.0.0.1:{port} is already in use; choose another port"
    )
    assert "startup complete" not in stderr.lower()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--port", "99999"], "mcpserve: invalid configuration: --port: "),
        (["--log-level", "loud"], "mcpserve: invalid configuration: --log-level: "),
    ],
)
def test_flag_errors_name_the_flag(flags: list[str], expected: str) -> None:
    result = CliRunner().invoke(main, ["serve", *flags], env={"MCPSERVE_PORT": None, "PORT": None})
    assert result.exit_code == 2
    assert result.output.startswith(expected), result.output
    assert "MCPSERVE_" not in result.output


def test_messages_carry_no_pydantic_prefix() -> None:
    result = CliRunner().invoke(main, ["config"], env={"MCP_API_KEYS": "short"})
    assert result.exit_code == 2
    assert result.output.startswith("mcpserve: invalid configuration: MCP_API_KEYS: 1 of 1 keys shorter")
    assert "Value error" not in result.output


async def test_get_root_names_the_endpoint_and_the_docs() -> None:
    app = make_app()
    reply = await request(app, "GET", path="/", headers={"accept": "text/html"})
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    page = reply.body.decode()
    assert "<code>/mcp</code>" in page and "https://modelcontextprotocol.io/specification" in page
    assert (await request(app, "HEAD", path="/")).body == b""
    assert (await request(app, "POST", path="/")).status == 404


async def test_a_browser_on_the_endpoint_is_told_what_it_is() -> None:
    app = make_app()
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    reply = await request(app, "GET", headers={"accept": browser})
    assert reply.status == 406
    assert "This is an MCP endpoint, not a web page" in reply.body.decode()
    stream = await request(app, "GET", headers={"accept": "text/event-stream"})
    assert stream.status != 406 or "web page" not in stream.body.decode()


@pytest.mark.slow
def test_a_failing_startup_hook_exits_2_with_what_failed_as_the_last_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from mcpserve import MCPServer\n"
        "app = MCPServer('broken')\n"
        "async def connect() -> None:\n"
        "    raise ConnectionRefusedError('postgresql://app:pw-in-dsn@db:5432/app refused')\n"
        "app.on_startup(connect)\n"
    )
    completed = _mcpserve(tmp_path, "serve", "app.py", "--port", str(free_port()))
    assert completed.returncode == 2
    stderr = completed.stderr.decode()
    assert stderr.splitlines()[-1] == (
        "mcpserve: start-up failed: ConnectionRefusedError: postgresql://app:**********@db:5432/app refused"
    )
    assert "pw-in-dsn" not in stderr


@pytest.mark.slow
def test_a_metrics_port_in_use_exits_2_naming_it(app_folder: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        completed = _mcpserve(
            app_folder, "serve", "app.py", "--port", str(free_port()), MCPSERVE_METRICS_PORT=port
        )
    assert completed.returncode == 2
    assert completed.stderr.decode().splitlines()[-1] == (
        f"mcpserve: invalid configuration: MCPSERVE_METRICS_PORT: 127.0.0.1:{port} is already in use; "
        "choose another port"
    )
