"""`ategnatos-mcp setup`: the configuration it writes or prints starts a working server from anywhere."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from ategnatos_mcp.cli import main

pytestmark = pytest.mark.integration


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


async def test_desktop_setup_merges_keeps_the_old_file_and_its_entry_starts_the_server(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "Claude" / "claude_desktop_config.json"
    config.parent.mkdir()
    before = {"mcpServers": {"notes": {"command": "notes-mcp"}}, "globalShortcut": "Ctrl+Space"}
    config.write_text(json.dumps(before), encoding="utf-8")

    code, out = _run(["setup", "claude-desktop", "--config", str(config)], capsys)
    assert code == 0, out
    written = json.loads(config.read_text(encoding="utf-8"))
    assert written["globalShortcut"] == "Ctrl+Space" and written["mcpServers"]["notes"] == {"command": "notes-mcp"}
    entry = written["mcpServers"]["ategnatos"]
    assert Path(entry["command"]).is_absolute() and entry["env"]["ATEGNATOS_HOME"] == str(home)
    copies = list(config.parent.glob("claude_desktop_config.json.*.bak"))
    assert [json.loads(c.read_text(encoding="utf-8")) for c in copies] == [before]
    assert "Other servers kept: notes." in out and "Restart Claude Desktop" in out

    # a second run changes nothing and keeps no second copy
    code, out = _run(["setup", "claude-desktop", "--config", str(config)], capsys)
    assert code == 0 and "nothing changed" in out
    assert len(list(config.parent.glob("*.bak"))) == 1

    # the entry, started from another folder as a client would, serves this project
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    params = StdioServerParameters(
        command=entry["command"],
        args=entry["args"],
        env={**entry["env"], "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9", "PATH": os.environ.get("PATH", "")},
        cwd=str(elsewhere),
    )
    async with Client(params) as client:
        added = await client.call_tool("eye_update", {"action": "add", "category": "style", "text": "linocut"})
        assert not added.is_error
    assert "linocut" in (home / "grimoire" / "eye.md").read_text(encoding="utf-8")


def test_desktop_setup_leaves_a_broken_config_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "claude_desktop_config.json"
    config.write_text('{"mcpServers": {"notes": ', encoding="utf-8")
    code, out = _run(["setup", "claude-desktop", "--config", str(config)], capsys)
    assert code == 2
    assert "not valid JSON" in out and "left it as it is" in out and "--print" in out
    assert config.read_text(encoding="utf-8") == '{"mcpServers": {"notes": '
    assert list(tmp_path.iterdir()) == [config]


def test_claude_code_setup_prints_a_user_scope_command_with_absolute_paths(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")  # no `claude` here: the command is printed, not run
    code, out = _run(["setup", "claude-code"], capsys)
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("claude mcp add"))
    argv = shlex.split(line)
    assert argv[:6] == ["claude", "mcp", "add", "ategnatos", "--scope", "user"]
    assert argv[argv.index("-e") + 1] == f"ATEGNATOS_HOME={home}"
    command = argv[argv.index("--") + 1 :]
    assert Path(command[0]).is_absolute() and Path(command[0]).exists() and command[-1] == "serve"
    assert "not on PATH" in out
