"""remote_deploy's steps against a real SSH server on 127.0.0.1 running real commands: a ComfyUI stand-in is
cloned from a local git repo, started detached, reached through the SSH port forward; a rerun skips what is done."""

from __future__ import annotations

import socket
import subprocess
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.providers import Deployer, InstanceStatus, Rental, deploy_plan
from ategnatos_mcp.remote import stop_detached
from tests.integration.ssh_server import ssh_lab

pytestmark = pytest.mark.integration

# Answers like ComfyUI's /system_stats, on the port it is given.
FAKE_COMFYUI = """import argparse, http.server
p = argparse.ArgumentParser(); p.add_argument("--listen"); p.add_argument("--port", type=int); a = p.parse_args()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b'{"system": {"os": "posix"}}')
    def log_message(self, *args): pass
http.server.HTTPServer((a.listen, a.port), H).serve_forever()
"""


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "comfyui-src"
    repo.mkdir()
    (repo / "main.py").write_text(FAKE_COMFYUI, encoding="utf-8")
    (repo / "requirements.txt").write_text("", encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(repo)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "fake comfyui"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    return repo


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_deploy_comfyui_is_idempotent_and_forwarded(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    port = _free_port()
    now = datetime.now(UTC)
    async with ssh_lab(tmp_path) as (server, connector, host), AsyncExitStack() as stack:
        rental = Rental(
            provider="runpod",
            instance_id="pod1",
            status=InstanceStatus.RUNNING,
            started_at=now - timedelta(hours=2),
            ssh_host=host.host,
            ssh_port=host.port,
            ssh_user=host.username,
        )
        plan = deploy_plan(
            "comfyui",
            rental,
            idle_minutes=30,
            max_hours=1,  # already past: the watchdog stops right after its first check (stop = "true" here)
            now=now,
            repo=str(repo),
            comfyui_port=port,
            stop_command="true",
        ).model_copy(update={"ready_seconds": 10.0})
        deployer = Deployer(connector, stack)
        first = await deployer.deploy(rental, plan)
        try:
            assert first.ran == ["watchdog", "comfyui-clone"] and first.skipped == ["comfyui-requirements"]
            assert first.comfyui == "started" and first.comfyui_url is not None
            assert (server.home / "ComfyUI" / "main.py").is_file()
            assert (server.home / ".ategnatos" / "watchdog" / "watchdog.sh").is_file()
            assert first.comfyui_answering  # deploy waited until it answered through the tunnel
            async with httpx.AsyncClient() as http:
                answer = await http.get(first.comfyui_url + "/system_stats")
            assert answer.json() == {"system": {"os": "posix"}}
            second = await deployer.deploy(rental, plan)
            assert second.ran == [] and set(second.skipped) == {"watchdog", "comfyui-clone", "comfyui-requirements"}
            assert second.comfyui == "already running" and second.comfyui_url == first.comfyui_url
        finally:
            async with connector.session(host) as ssh:
                await stop_detached(ssh, "comfyui")


async def test_deploy_needs_an_ssh_endpoint(tmp_path: Path) -> None:
    rental = Rental(provider="vast", instance_id="1", started_at=datetime.now(UTC))
    plan = deploy_plan("watchdog", rental, idle_minutes=0, max_hours=0, now=datetime.now(UTC), stop_command="true")
    assert [s.name for s in plan.steps] == ["watchdog"] and not plan.forward
    async with ssh_lab(tmp_path) as (_server, connector, _host), AsyncExitStack() as stack:
        with pytest.raises(InvalidRequestError):
            await Deployer(connector, stack).deploy(rental, plan)
