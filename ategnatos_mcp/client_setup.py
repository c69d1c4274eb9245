"""Connecting a client: the exact configuration for Claude Code and Claude Desktop, with absolute paths.

A configuration that names ``.venv/bin/ategnatos-mcp`` works only when the client starts in this folder; the
ones written here name the installed command and the project folder absolutely, so they work from anywhere.
Claude Code's user scope makes the server available in every project; Claude Desktop reads one JSON file per
user, which may hold other servers: it is merged, never replaced, and the earlier file is kept beside it.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from ategnatos_mcp.errors import ConfigError
from ategnatos_mcp.state.atomic import write_text_atomic

__all__ = [
    "SERVER_NAME",
    "shell_line",
    "DesktopSetup",
    "claude_code_command",
    "desktop_config_path",
    "server_entry",
    "write_desktop_config",
]

SERVER_NAME = "ategnatos"


def _launcher() -> list[str]:
    """The installed ``ategnatos-mcp`` beside this Python (a venv's bin/), else this Python with ``-m``."""
    python = Path(sys.executable).absolute()
    for name in ("ategnatos-mcp", "ategnatos-mcp.exe"):
        script = python.parent / name
        if script.is_file():
            return [str(script)]
    return [str(python), "-m", "ategnatos_mcp"]


def server_entry(home: Path) -> dict[str, Any]:
    """The ``mcpServers`` entry both clients understand: absolute command, ``serve``, the project folder."""
    command, *args = _launcher()
    return {"command": command, "args": [*args, "serve"], "env": {"ATEGNATOS_HOME": str(home.absolute())}}


def claude_code_command(home: Path) -> list[str]:
    """``claude mcp add`` at user scope: the server is there in every project, started with these paths."""
    entry = server_entry(home)
    env = [item for key, value in entry["env"].items() for item in ("-e", f"{key}={value}")]
    # The name goes before the options: ``-e`` takes several values and would swallow a name after it.
    return ["claude", "mcp", "add", SERVER_NAME, "--scope", "user", *env, "--", entry["command"], *entry["args"]]


def shell_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in argv)


def desktop_config_path(platform: str = sys.platform, environ: Mapping[str, str] = os.environ) -> Path:
    """Where Claude Desktop reads its configuration on this system."""
    user_home = Path(environ.get("HOME") or Path.home())
    if platform == "darwin":
        return user_home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if platform.startswith("win"):
        appdata = environ.get("APPDATA")
        return (
            (Path(appdata) if appdata else user_home / "AppData" / "Roaming") / "Claude" / "claude_desktop_config.json"
        )
    config_home = environ.get("XDG_CONFIG_HOME")
    return (Path(config_home) if config_home else user_home / ".config") / "Claude" / "claude_desktop_config.json"


@dataclass(frozen=True)
class DesktopSetup:
    path: Path
    kept_copy: Path | None  # the earlier file, when there was one and it changed
    replaced_entry: bool  # an older 'ategnatos' entry was updated
    other_servers: list[str]
    changed: bool


def write_desktop_config(path: Path, home: Path, *, now: datetime) -> DesktopSetup:
    """Add (or update) our entry in Claude Desktop's configuration; every other setting and server stays.

    Raises:
        ConfigError: the file exists but is not a JSON object (nothing is written then).
    """
    config: dict[str, Any] = {}
    original: str | None = None
    if path.exists():
        original = path.read_text(encoding="utf-8")
        try:
            loaded: object = json.loads(original) if original.strip() else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}), so I left it as it is.",
                hint="Fix or remove that line in the file, then run setup again; or add the entry by hand "
                "(`ategnatos-mcp setup claude-desktop --print` shows it).",
            ) from exc
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{path} does not hold a JSON object, so I left it as it is.",
                hint="Its top level must be { ... }; fix it or add the entry by hand (setup claude-desktop --print).",
            )
        config = cast("dict[str, Any]", loaded)
    servers = config.get("mcpServers")
    if servers is None:
        servers = {}
    if not isinstance(servers, dict):
        raise ConfigError(
            f"In {path}, 'mcpServers' is not an object, so I left the file as it is.",
            hint="Make it an object of servers, or add the entry by hand (setup claude-desktop --print).",
        )
    servers = cast("dict[str, Any]", servers)
    entry = server_entry(home)
    replaced = SERVER_NAME in servers
    changed = servers.get(SERVER_NAME) != entry
    kept: Path | None = None
    if changed:
        servers[SERVER_NAME] = entry
        config["mcpServers"] = servers
        if original is not None:
            kept = _free_copy_name(path, now)
            kept.write_text(original, encoding="utf-8")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    others = sorted(name for name in servers if name != SERVER_NAME)
    return DesktopSetup(path=path, kept_copy=kept, replaced_entry=replaced, other_servers=others, changed=changed)


def _free_copy_name(path: Path, now: datetime) -> Path:
    stamp = now.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}.{stamp}.bak")
    number = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{stamp}-{number}.bak")
        number += 1
    return candidate
