"""The server started over stdio exactly as mcp.json says, and the HTTP transport's bearer token."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client, StdioServerParameters
from mcp.types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR

from ategnatos_mcp import __version__
from ategnatos_mcp.cli import MIN_TOKEN_LENGTH, BearerAuth, http_token, main

pytestmark = pytest.mark.integration

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
    refused: dict[str, Any] = {}
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


@pytest.mark.parametrize("token", ["", " ", "\t \t"])
@pytest.mark.parametrize("address", ["127.0.0.1:8765", "0.0.0.0:8765"])
def test_an_empty_or_blank_token_is_refused_everywhere(
    token: str, address: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATEGNATOS_HTTP_TOKEN", token)
    assert main(["serve", "--http", address]) == 2
    err = capsys.readouterr().err
    assert "ATEGNATOS_HTTP_TOKEN is set but empty (or only spaces)" in err and "Next step:" in err


@pytest.mark.parametrize("token", ["Zq9", "k" * (MIN_TOKEN_LENGTH - 1), "Zq9 secret with spaces", "Zq9\u00e9" * 8])
def test_a_short_or_unusable_token_is_refused_on_a_network_address(
    token: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATEGNATOS_HTTP_TOKEN", token)
    assert main(["serve", "--http", "0.0.0.0:8765"]) == 2
    err = capsys.readouterr().err
    assert ("short token" in err or "cannot carry" in err) and "Next step:" in err
    assert token not in err  # the token itself is never printed


def test_a_short_token_on_loopback_is_allowed_with_a_warning_and_a_long_one_quietly() -> None:
    token, warnings = http_token("Zq9", "127.0.0.1")
    assert token == "Zq9" and len(warnings) == 1 and "only 3 characters long" in warnings[0]
    assert http_token("Zq9", "::1")[0] == "Zq9" and http_token("Zq9", "localhost")[0] == "Zq9"
    long = "k" * MIN_TOKEN_LENGTH
    assert http_token(long, "0.0.0.0") == (long, []) and http_token(long, "192.168.1.20") == (long, [])
    generated, quiet = http_token(None, "127.0.0.2")
    assert len(generated) >= 40 and quiet == []


async def test_a_short_token_on_loopback_warns_loudly_and_still_guards_every_request(home: Path) -> None:
    entry = json.loads((ROOT / "mcp.json").read_text(encoding="utf-8"))["mcpServers"]["ategnatos"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ATEGNATOS_HOME": str(home), "ATEGNATOS_HTTP_TOKEN": "Zq9-short"}
    command = [str(ROOT / entry["command"]), "serve", "--http", f"127.0.0.1:{port}"]
    log = b""
    async with await anyio.open_process(command, env=env, cwd=ROOT) as proc:
        assert proc.stderr is not None
        try:
            with anyio.fail_after(30):
                while b"serving MCP at" not in log:
                    log += await proc.stderr.receive()
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    while True:  # the line is printed just before uvicorn binds
                        try:
                            refused = await http.post("/mcp", json={})
                            break
                        except httpx.ConnectError:
                            await anyio.sleep(0.05)
                    allowed = await http.post("/mcp", json={}, headers={"Authorization": "Bearer Zq9-short"})
        finally:
            proc.terminate()
    assert b"WARNING: ATEGNATOS_HTTP_TOKEN is only 9 characters long" in log
    assert refused.status_code == 401 and allowed.status_code != 401
