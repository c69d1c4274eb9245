"""``ategnatos-mcp``: serve (stdio or streamable HTTP), doctor, install-skills, setup, --version. Logs go to stderr."""

from __future__ import annotations

import argparse
import gc
import hmac
import ipaddress
import logging
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ategnatos_mcp import __version__, client_setup
from ategnatos_mcp.errors import AtegnatosError, ConfigError
from ategnatos_mcp.settings import Settings, load_settings
from ategnatos_mcp.skills_catalog import install_skills_report
from ategnatos_mcp.studio import describe_environment

__all__ = ["MIN_TOKEN_LENGTH", "BearerAuth", "http_token", "main"]

DEFAULT_HTTP = "127.0.0.1:8765"
MIN_TOKEN_LENGTH = 16
_MAKE_TOKEN = "e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ategnatos-mcp", description="Ategnatos: an AI-art studio MCP server.")
    parser.add_argument("--version", action="version", version=f"ategnatos-mcp {__version__}")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument(
        "--http",
        nargs="?",
        const=DEFAULT_HTTP,
        metavar="HOST:PORT",
        help=f"serve streamable HTTP instead of stdio (default {DEFAULT_HTTP}); always behind a bearer token",
    )
    commands.add_parser("doctor", help="say in plain words what is configured, detected and missing")
    install = commands.add_parser("install-skills", help="copy the skills into a project's .claude/skills/")
    install.add_argument("target", nargs="?", default=".", help="the project folder (default: here)")
    install.add_argument("--force", action="store_true", help="overwrite skill files you changed")
    setup = commands.add_parser("setup", help="connect a client: the exact configuration, with absolute paths")
    setup.add_argument("client", choices=["claude-code", "claude-desktop"], help="which client to connect")
    setup.add_argument("--print", dest="print_only", action="store_true", help="only print what would be set")
    setup.add_argument("--config", type=Path, help="claude-desktop: the configuration file (default: the usual place)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        logging.getLogger().setLevel(settings.log_level)
        # Every ComfyUI/cloud request would otherwise be an INFO line (and cost time on the hot path).
        logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
        if args.command == "doctor":
            return _doctor(settings)
        if args.command == "install-skills":
            return _install_skills(Path(args.target), force=args.force)
        if args.command == "setup":
            return _setup(settings, args.client, print_only=args.print_only, config=args.config)
        return _serve(settings, args.http if args.command == "serve" else None)
    except AtegnatosError as exc:
        print(f"ategnatos-mcp: {exc}", file=sys.stderr)
        return 2


def _serve(settings: Settings, http: str | None) -> int:
    listen: tuple[str, int, str] | None = None
    if http is not None:
        host, _, port_text = http.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not port_text.isdigit():
            print(f"ategnatos-mcp: '{http}' is not HOST:PORT, e.g. {DEFAULT_HTTP}", file=sys.stderr)
            return 2
        configured = settings.http_token.get_secret_value() if settings.http_token is not None else None
        token, warnings = http_token(configured, host)  # before the slow start-up: a refusal comes at once
        for warning in warnings:
            print(f"ategnatos-mcp: WARNING: {warning}", file=sys.stderr)
        if configured is None:
            print(f"ategnatos-mcp: bearer token for this run: {token}", file=sys.stderr)
        listen = (host, int(port_text), token)
    # Start-up allocates thousands of long-lived objects (schemas, models); collecting garbage while they are
    # built only costs time, and freezing them afterwards keeps later collections short.
    gc.disable()
    try:
        # start-up: imported with the collector off; --version, setup and install-skills skip its ~0.9 s
        from ategnatos_mcp.server import build_server

        server = build_server(settings)
    finally:
        gc.freeze()
        gc.enable()
    if listen is None:
        server.run("stdio")
        return 0
    host, port, token = listen
    import uvicorn

    app = BearerAuth(server.streamable_http_app(host=host), token)
    print(f"ategnatos-mcp: serving MCP at http://{host}:{port}/mcp", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())
    return 0


def http_token(configured: str | None, host: str) -> tuple[str, list[str]]:
    """The bearer token to serve HTTP with, and warnings to print; the token itself is never in a message.

    No token: a random one on loopback, refused elsewhere. Empty, blank or with spaces, control or non-ASCII
    characters: refused (HTTP drops surrounding spaces and cannot carry the rest, so nobody could log in).
    Shorter than ``MIN_TOKEN_LENGTH``: refused on a network address (anyone who guesses it can rent GPUs
    in your name), a warning on loopback.

    Raises:
        ConfigError: the token cannot be used on that address.
    """
    if configured is None:
        if not _is_loopback(host):
            raise ConfigError(
                f"Refusing to listen on {host} without a token.",
                key="http_token",
                hint=f"Set ATEGNATOS_HTTP_TOKEN to a long random value first ({_MAKE_TOKEN}); clients send it as "
                "'Authorization: Bearer <token>'.",
            )
        return secrets.token_urlsafe(32), []
    if not configured.strip():
        raise ConfigError(
            "ATEGNATOS_HTTP_TOKEN is set but empty (or only spaces), so no client could ever log in.",
            key="http_token",
            hint=f"Set it to a long random value ({_MAKE_TOKEN}), or unset it to get a fresh token on 127.0.0.1.",
        )
    if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in configured):
        raise ConfigError(
            "ATEGNATOS_HTTP_TOKEN contains spaces, control characters or non-ASCII letters, which an HTTP "
            "Authorization header cannot carry as they are, so no client could log in with it.",
            key="http_token",
            hint=f"Use letters, digits and - _ . ~ + / = only ({_MAKE_TOKEN}).",
        )
    if len(configured) >= MIN_TOKEN_LENGTH:
        return configured, []
    short = f"ATEGNATOS_HTTP_TOKEN is only {len(configured)} characters long; a token this short can be guessed."
    if not _is_loopback(host):
        raise ConfigError(
            f"Refusing to listen on {host} with a short token. {short} Anyone on your network who guesses it "
            "could use this studio and rent GPUs in your name.",
            key="http_token",
            hint=f"Use at least {MIN_TOKEN_LENGTH} random characters ({_MAKE_TOKEN}).",
        )
    return configured, [f"{short} Fine for a quick test on this machine; use at least {MIN_TOKEN_LENGTH} characters."]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BearerAuth:
    """ASGI wrapper: every HTTP request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if not hmac.compare_digest(headers.get(b"authorization", b""), self._expected):
                await send(
                    {"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]}
                )
                await send({"type": "http.response.body", "body": b"Missing or wrong bearer token.\n"})
                return
        await self.app(scope, receive, send)


def _doctor(settings: Settings) -> int:
    import anyio

    from ategnatos_mcp.server import build_app  # start-up: the other commands skip its ~0.9 s of imports

    async def run() -> list[str]:
        return describe_environment(await build_app(settings).detect_environment())

    print(f"Ategnatos {__version__}")
    print(f"Project folder: {settings.home}")
    config = settings.home / "ategnatos.toml"
    print(f"Settings file: {config if config.is_file() else 'none (defaults and environment variables in use)'}")
    print(
        f"Grimoire: {settings.grimoire_dir} ({'exists' if settings.grimoire_dir.is_dir() else 'created on first use'})"
    )
    print(
        f"Budget caps: ${settings.gpu.max_usd_per_hour:.2f}/hour, {settings.gpu.max_hours_per_instance:g} h per "
        f"instance, ${settings.gpu.monthly_usd_cap:.0f}/month"
    )
    for line in anyio.run(run):
        print(f"- {line}")
    return 0


def _install_skills(target: Path, *, force: bool) -> int:
    report = install_skills_report(target.resolve(), overwrite=force)
    for path in report.written:
        print(f"installed {path}")
    for path in report.skipped_user_changed:
        print(f"kept your edited {path} (use --force to replace it)")
    print(
        f"{len(report.written)} skill files installed, {len(report.unchanged)} already up to date, "
        f"{len(report.skipped_user_changed)} kept because you changed them; in {report.target}"
    )
    return 0


def _setup(settings: Settings, client: str, *, print_only: bool, config: Path | None) -> int:
    import json
    import shutil
    import subprocess

    entry = {"mcpServers": {client_setup.SERVER_NAME: client_setup.server_entry(settings.home)}}
    if client == "claude-code":
        command = client_setup.claude_code_command(settings.home)
        line = client_setup.shell_line(command)
        if print_only or shutil.which("claude") is None:
            if not print_only:
                print("The `claude` command is not on PATH here; run this where Claude Code is installed:")
            print(line)
            print("(or put this in a project's .mcp.json:)")
            print(json.dumps(entry, indent=2))
            return 0
        print(f"Running: {line}")
        done = subprocess.run(command, check=False)
        if done.returncode == 0:
            print("Done: Claude Code starts Ategnatos in every project (user scope). Check with `claude mcp list`.")
        return done.returncode
    path = config or client_setup.desktop_config_path()
    if print_only:
        print(f"Add this to {path} (keep any other servers in it), then restart Claude Desktop:")
        print(json.dumps(entry, indent=2))
        return 0
    report = client_setup.write_desktop_config(path, settings.home, now=datetime.now(UTC))
    if not report.changed:
        print(f"{path} already starts Ategnatos with these paths; nothing changed.")
        return 0
    print(f"{'Updated' if report.replaced_entry else 'Added'} the 'ategnatos' server in {path}.")
    if report.kept_copy is not None:
        print(f"The earlier file is kept as {report.kept_copy}.")
    if report.other_servers:
        print(f"Other servers kept: {', '.join(report.other_servers)}.")
    print("Restart Claude Desktop to connect.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
