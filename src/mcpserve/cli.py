"""The ``mcpserve`` command. Flags override environment variables, which override the config file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click
import orjson

from mcpserve._version import __version__
from mcpserve.config import ENV_PREFIX, Settings, load_settings
from mcpserve.errors import ConfigError, StartupError
from mcpserve.loader import DEFAULT_APP, AppLoadError, load_app

__all__ = ["main"]

EXIT_CONFIG = 2


def _invalid(problem: object) -> NoReturn:
    click.echo(f"mcpserve: invalid configuration: {problem}", err=True)
    sys.exit(EXIT_CONFIG)


def _as_flag(exc: ConfigError, config: str | None, flags: dict[str, Any]) -> str:
    """The problem, naming the flag the user typed rather than the variable behind it."""
    given = {ENV_PREFIX + name.upper(): name for name, value in flags.items() if value is not None}
    if config is not None:
        given[ENV_PREFIX + "CONFIG"] = "config"
    name = given.get(exc.variable)
    if name is None:
        return str(exc)
    return f"--{name.replace('_', '-')}: {str(exc).removeprefix(exc.variable + ': ')}"


def _settings(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(overrides, config_file=config)
    except ConfigError as exc:
        _invalid(_as_flag(exc, config, overrides))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcpserve")
def main() -> None:
    """mcpserve: the production runtime for MCP servers."""


def serving_options(command: Callable[..., None]) -> Callable[..., None]:
    """The flags of ``serve``, shared with ``check`` so both see the same settings."""
    options = [
        click.option(
            "--transport", type=click.Choice(["stdio", "http"]), help="Default: http (MCPSERVE_TRANSPORT)."
        ),
        click.option("--host", help="Bind address (MCPSERVE_HOST, default 127.0.0.1)."),
        click.option("--port", type=int, help="Port (MCPSERVE_PORT or PORT, default 8000)."),
        click.option("--log-level", help="debug, info, warning, error (MCPSERVE_LOG_LEVEL)."),
        click.option(
            "--auth",
            type=click.Choice(["none", "keys", "oauth", "keys,oauth"]),
            help="Authentication for HTTP (MCPSERVE_AUTH; default: what is configured).",
        ),
        click.option(
            "--config",
            "config",
            type=click.Path(dir_okay=False),
            help="TOML settings file (MCPSERVE_CONFIG).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@click.argument("app", default=DEFAULT_APP, required=False)
@serving_options
def serve(app: str, config: str | None, **flags: Any) -> None:
    """Serve APP (module:attr or a .py file; default: the bundled demo)."""
    from mcpserve.runtime import serve as run  # noqa: PLC0415 - keep `mcpserve --help` fast

    settings = _settings(config, **flags)
    try:
        server = load_app(app, settings)
    except AppLoadError as exc:
        click.echo(f"mcpserve: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    try:
        run(server, settings=settings)
    except ConfigError as exc:
        _invalid(_as_flag(exc, config, flags))
    except StartupError as exc:  # the log above holds the traceback; this line says what failed
        click.echo(f"mcpserve: start-up failed: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except KeyboardInterrupt:
        sys.exit(130)


@main.command()
@serving_options
@click.option("--list", "list_only", is_flag=True, help="Print the merged catalogue as JSON and exit.")
def gateway(config: str | None, list_only: bool, **flags: Any) -> None:
    """Serve the [[upstreams]] of the config file through one endpoint (docs/gateway.md)."""
    from mcpserve.gateway.listing import list_catalogue  # noqa: PLC0415 - keep `mcpserve --help` fast
    from mcpserve.runtime import configure_logging  # noqa: PLC0415
    from mcpserve.runtime import serve as run  # noqa: PLC0415
    from mcpserve.server.app import MCPServer  # noqa: PLC0415

    settings = _settings(config, **flags)
    if not settings.upstreams:
        _invalid("upstreams: no [[upstreams]] table in the config file (MCPSERVE_CONFIG / --config)")
    server = MCPServer("mcpserve-gateway")
    try:
        if list_only:
            configure_logging(settings)
            click.echo(orjson.dumps(list_catalogue(server, settings), option=orjson.OPT_INDENT_2).decode())
            return
        run(server, settings=settings)
    except ConfigError as exc:
        _invalid(exc)
    except KeyboardInterrupt:
        sys.exit(130)


@main.command("config")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML settings file.")
def show_config(config: str | None) -> None:
    """Print the effective configuration as JSON, secrets redacted."""
    settings = _settings(config)
    click.echo(orjson.dumps(settings.redacted(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


@main.command("check")
@click.argument("app", default=DEFAULT_APP, required=False)
@serving_options
def check(app: str, config: str | None, **flags: Any) -> None:
    """Validate settings, build APP, run its startup hooks and readiness checks; serve nothing.

    Takes the flags of serve. Prints the result as JSON. Exit status: 0 ready (also when only
    degraded), 1 not ready, 2 invalid configuration.
    """
    from mcpserve.runtime import check as run_check  # noqa: PLC0415 - keep `mcpserve --help` fast
    from mcpserve.runtime import configure_logging  # noqa: PLC0415

    settings = _settings(config, **flags)
    configure_logging(settings)
    try:
        report = run_check(load_app(app, settings), settings)
    except AppLoadError as exc:
        _invalid(exc)
    except ConfigError as exc:
        _invalid(_as_flag(exc, config, flags))
    click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    sys.exit(0 if report["status"] == "ready" else 1)


@main.command("new-key")
def new_key() -> None:
    """Print a fresh requestState sealing key for MCPSERVE_REQUEST_STATE_KEYS."""
    from mcpserve.protocol.sealing import KeyRing  # noqa: PLC0415

    click.echo(KeyRing.generate_key_string())


@main.group()
def keys() -> None:
    """API keys for HTTP authentication (MCPSERVE_API_KEYS_FILE)."""


@keys.command("new")
@click.option("--principal", required=True, help="Who the key authenticates (shown to tools).")
@click.option("--scope", "scopes", multiple=True, help="A scope the key grants; repeat for more.")
def keys_new(principal: str, scopes: tuple[str, ...]) -> None:
    """Create a key: print it once, and the table to add to the keys file (which stores only its hash)."""
    from mcpserve.auth.keys import generate_key, hash_key  # noqa: PLC0415

    if not principal.strip():
        raise click.BadParameter("must not be empty", param_hint="--principal")
    key = generate_key()
    listed = ", ".join(orjson.dumps(s).decode() for s in scopes)
    click.echo(f"API key (shown once; give it to the client as 'Authorization: Bearer <key>'):\n\n  {key}\n")
    click.echo("Add to the file MCPSERVE_API_KEYS_FILE names:\n")
    click.echo(f"[[keys]]\nprincipal = {orjson.dumps(principal.strip()).decode()}")
    click.echo(f'sha256 = "{hash_key(key)}"\nscopes = [{listed}]')


@main.command("health")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--timeout", default=3.0, show_default=True, help="Seconds to wait for the answer.")
def health(config: str | None, timeout: float) -> None:
    """Ask this machine's server for /health (a container HEALTHCHECK without curl); exit 0 if live.

    Uses the settings the server uses: the metrics port when set (plain HTTP, also with mutual
    TLS on the main port), else the main port, over https when TLS is configured.
    """
    from mcpserve.probe import probe_health  # noqa: PLC0415

    settings = _settings(config)
    ok, detail = probe_health(settings, timeout)
    click.echo(detail, err=not ok)
    sys.exit(0 if ok else 1)
