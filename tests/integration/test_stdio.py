"""The server started over stdio exactly as mcp.json says, and the HTTP transport's bearer token."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters

from ategnatos_mcp import __version__
from ategnatos_mcp.cli import BearerAuth, main

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


async def test_server_starts_over_stdio_as_mcp_json_says(home: Path) -> None:
    entry = json.loads((ROOT / "mcp.json").read_text(encoding="utf-8"))["mcpServers"]["ategnatos"]
    params = StdioServerParameters(
        command=str(ROOT / entry["command"]),
        args=entry["args"],
        env={**entry["env"], "ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9"},
        cwd=str(ROOT),
    )
    async with Client(params) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"eye_update", "eye_query", "studio_register", "studio_detect"} <= tools
        result = await client.call_tool("eye_update", {"action": "add", "category": "style", "text": "woodcut"})
        assert not result.is_error
        assert result.structured_content["entry"]["text"] == "woodcut"
    assert "woodcut" in (home / "grimoire" / "eye.md").read_text(encoding="utf-8")


def test_version_flag_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"ategnatos-mcp {__version__}"


def test_http_on_a_public_address_needs_a_configured_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--http", "0.0.0.0:8765"]) == 2
    assert "ATEGNATOS_HTTP_TOKEN" in capsys.readouterr().err


async def test_bearer_token_guards_every_http_request() -> None:
    async def inner(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = httpx.ASGITransport(app=BearerAuth(inner, "s3cret"))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        assert (await http.post("/mcp")).status_code == 401
        assert (await http.post("/mcp", headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await http.post("/mcp", headers={"Authorization": "Bearer s3cret"})).status_code == 200


def test_doctor_prints_plain_facts(capsys: pytest.CaptureFixture[str], monkeypatch, home: Path) -> None:
    monkeypatch.setenv("ATEGNATOS_COMFYUI_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ATEGNATOS_NVIDIA_SMI", str(home / "no-such-nvidia-smi"))
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-doctor-secret")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"Project folder: {home}" in out
    assert "No local GPU" in out
    assert "GPU cloud keys set: runpod." in out
    assert "rp-doctor-secret" not in out


def test_install_skills_copies_the_skills_and_keeps_user_edits(tmp_path: Path, capsys) -> None:
    project = tmp_path / "my-project"
    project.mkdir()
    assert main(["install-skills", str(project)]) == 0
    skill = project / ".claude" / "skills" / "eye" / "SKILL.md"
    assert skill.read_text(encoding="utf-8").startswith("---\nname: eye")
    skill.write_text("my own notes\n", encoding="utf-8")
    assert main(["install-skills", str(project)]) == 0
    assert skill.read_text(encoding="utf-8") == "my own notes\n"
    assert "kept your edited" in capsys.readouterr().out


async def test_make_serve_keeps_stdout_for_the_protocol(home: Path) -> None:
    params = StdioServerParameters(
        command="make",
        args=["--no-print-directory", "serve"],
        env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9"},
        cwd=str(ROOT),
    )
    async with Client(params) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
    assert "eye_update" in tools
