"""The server started over stdio exactly as mcp.json says, and the HTTP transport's bearer token."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client, StdioServerParameters
from mcp.types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR

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


async def test_lines_that_are_not_json_rpc_get_the_protocol_error_and_serving_goes_on(home: Path) -> None:
    entry = json.loads((ROOT / "mcp.json").read_text(encoding="utf-8"))["mcpServers"]["ategnatos"]
    env = {**os.environ, "ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9"}
    garbage = [
        (b"this is not json", PARSE_ERROR),
        (b"[1,2,3]", INVALID_REQUEST),
        (b'{"jsonrpc":"1.0","id":7,"method":"ping"}', INVALID_REQUEST),
        (b"[" * 100_000 + b"]" * 100_000, PARSE_ERROR),
        (b'{"jsonrpc":"2.0","id":8}', INVALID_REQUEST),
    ]
    log = bytearray()
    async with await anyio.open_process([str(ROOT / entry["command"]), *entry["args"]], env=env, cwd=ROOT) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stdin, stdout, stderr = proc.stdin, BufferedByteReceiveStream(proc.stdout), proc.stderr

        async def drain_log() -> None:
            async for chunk in stderr:
                log.extend(chunk)

        async def send(message: bytes | dict[str, Any]) -> None:
            await stdin.send((message if isinstance(message, bytes) else json.dumps(message).encode()) + b"\n")

        async def answer() -> dict[str, Any]:
            with anyio.fail_after(20):
                return json.loads(await stdout.receive_until(b"\n", 1_000_000))

        async with anyio.create_task_group() as tg:
            tg.start_soon(drain_log)
            hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
            await send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
            assert (await answer())["id"] == 1
            await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            await send(b"   ")  # a blank line is not a message: no answer for it
            for number, (line, code) in enumerate(garbage, start=2):
                await send(line)
                error = await answer()
                assert error["jsonrpc"] == "2.0" and error["id"] is None and error["error"]["code"] == code, error
                await send({"jsonrpc": "2.0", "id": number, "method": "ping"})
                assert await answer() == {"jsonrpc": "2.0", "id": number, "result": {}}
            prompt = {"name": "studio", "arguments": {"x": "1"}}
            await send({"jsonrpc": "2.0", "id": 99, "method": "prompts/get", "params": prompt})
            refused = await answer()
            await stdin.aclose()
            with anyio.fail_after(20):
                await proc.wait()
    assert refused["id"] == 99 and refused["error"]["code"] == INVALID_PARAMS
    assert "has no argument 'x'" in refused["error"]["message"] and "Next step" in refused["error"]["message"]
    assert b"Traceback" not in log
