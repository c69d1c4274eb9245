"""A local port forward reaches a service that listens on the GPU host's loopback only."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from ategnatos_mcp.remote import forward_port
from tests.support.hostile_http import tiny_http_server
from tests.support.ssh_server import ssh_lab

pytestmark = pytest.mark.integration


async def test_forward_reaches_a_loopback_http_server_through_ssh(tmp_path: Path) -> None:
    async with (
        tiny_http_server() as comfy_port,
        ssh_lab(tmp_path) as (server, connector, host),
        connector.session(host) as ssh,
    ):
        forward = await forward_port(ssh, comfy_port)
        try:
            assert forward.url.startswith("http://127.0.0.1:")
            assert forward.local_port != comfy_port
            async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
                answer = await http.get(f"{forward.url}/system_stats")
            assert answer.json() == {"system": {"comfyui_version": "0.3.0"}, "path": "/system_stats"}

            # After a drop, the forward comes back on the same local port, so a registered URL stays valid.
            conn = await ssh.connection()
            server.cut()
            with anyio.fail_after(5):
                await conn.wait_closed()
            assert not forward.open
            url = forward.url
            await forward.reopen()
            assert forward.open and forward.url == url
            async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
                assert (await http.get(f"{forward.url}/queue")).json()["path"] == "/queue"
        finally:
            await forward.close()
        assert not forward.open


async def test_keep_open_brings_the_forward_back_by_itself_after_a_drop(tmp_path: Path) -> None:
    async with (
        tiny_http_server() as comfy_port,
        ssh_lab(tmp_path) as (server, connector, host),
        connector.session(host) as ssh,
    ):
        forward = await forward_port(ssh, comfy_port)
        reopened = anyio.Event()

        async def on_reopen(_forward: object) -> None:
            reopened.set()

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: forward.keep_open(retry_seconds=0, on_reopen=on_reopen))
                server.cut()
                await reopened.wait()
                async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
                    assert (await http.get(f"{forward.url}/history")).json()["path"] == "/history"
                assert server.connection_count == 2
                # Closing the session ends keep_open by itself: the task group exits without a cancel.
                await ssh.close()
        await forward.close()
