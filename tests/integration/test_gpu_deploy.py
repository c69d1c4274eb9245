"""remote_deploy's steps against a real SSH server on 127.0.0.1 running real commands: a ComfyUI stand-in is
cloned from a local git repo, started detached, reached through the SSH port forward; a rerun skips what is done.
The trainers are installed at their catalogued commit (real git against local mirrors) with PyTorch chosen for the
host's driver (a stand-in nvidia-smi reporting real driver versions, a recording stand-in for pip)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from mcp import Client

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.providers import Deployer, InstanceStatus, Rental, deploy_plan
from ategnatos_mcp.providers.setup.deploy import TRAINER_TARGETS
from ategnatos_mcp.providers.setup.trainers import TrainerVersion
from ategnatos_mcp.remote import stop_detached
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.wiring import Wiring
from tests.support.fake_clouds import FakeClock, FakeDeployer, FakeRunPod, make_service
from tests.support.gpu_host import GpuHostSandbox, make_gpu_host, make_mirror
from tests.support.ink_run import gates_1_and_2
from tests.support.ssh_server import SSHTestServer, ssh_lab

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


@dataclass
class RentedLab:
    client: Client
    key: str
    server: SSHTestServer
    host: GpuHostSandbox
    commits: dict[str, str]


@asynccontextmanager
async def rented_gpu_lab(
    tmp_path: Path,
    settings: Settings,
    app: Wiring,
    *,
    driver: str = "550.54.14",
    gpu: str = "NVIDIA GeForce RTX 4090",
    compute_cap: str = "8.9",
) -> AsyncIterator[RentedLab]:
    """A RunPod rental (the recorded fake cloud) whose SSH endpoint is the loopback server, sandboxed as a GPU host:
    its nvidia-smi reports ``gpu`` on ``driver``, pip is the recording stand-in, the backends come from local git
    mirrors holding the catalogued commits (stood in for by each mirror's older commit)."""
    sandbox = make_gpu_host(tmp_path / "gpu-host", driver=driver, gpu_name=gpu, compute_cap=compute_cap)
    versions, commits = {}, {}
    for backend in TRAINER_TARGETS:
        mirror, pinned = make_mirror(tmp_path / "mirrors", backend)
        commits[backend] = pinned
        versions[backend] = TrainerVersion(commit=pinned, date="2026-08-21", repo=str(mirror))
    runpod, clock = FakeRunPod(), FakeClock()
    async with ssh_lab(tmp_path, env=sandbox.env) as (server, connector, _host):
        service = make_service(app.store, [runpod], clock)
        # gpu_spinup installs the watchdog through a stand-in; remote_deploy below uses the real Deployer.
        app.gpu, app.ssh, app.deployer, app.trainer_versions = service, connector, FakeDeployer(), versions
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            offers = await client.call_tool("gpu_offers", {"gpu": "4090", "hours": 1})
            quote_id = offers.structured_content["offers"][0]["quote_id"]  # type: ignore[index]
            rented = await client.call_tool("gpu_spinup", {"quote_id": quote_id, "confirm": True})
            assert not rented.is_error, rented.content
            key = rented.structured_content["instance"]["key"]  # type: ignore[index]
            runpod.pods[key.split(":", 1)[1]]["ssh"]["direct"].update(host="127.0.0.1", port=server.port)
            app.deployer = Deployer(connector, app.exit_stack)
            yield RentedLab(client, key, server, sandbox, commits)


@pytest.mark.parametrize(
    ("target", "folder", "packages"),
    [
        ("kohya", "sd-scripts", ["-r", "requirements.txt"]),
        ("simpletuner", "SimpleTuner", ["-e", ".[cuda]"]),
        ("ai-toolkit", "ai-toolkit", ["-r", "requirements.txt"]),
    ],
)
async def test_remote_deploy_installs_each_trainer_at_the_catalogued_commit_with_pytorch_for_the_driver(
    tmp_path: Path, settings: Settings, app: Wiring, target: str, folder: str, packages: list[str]
) -> None:
    async with rented_gpu_lab(tmp_path, settings, app) as lab:
        first = await lab.client.call_tool("remote_deploy", {"instance": lab.key, "target": target})
        assert not first.is_error, first.content
        result = first.structured_content
        assert result is not None
        assert result["ran"] == ["watchdog", f"{target}-clone", "pytorch", f"{target}-install"]
        checkout = lab.server.home / folder
        head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert head.stdout.strip() == lab.commits[target] and not (checkout / "NEWER").exists()
        torch_call, install_call = lab.host.pip_calls()
        assert torch_call == [
            "install", "-q", "--disable-pip-version-check", "torch==2.6.0", "torchvision==0.21.0",
            "torchaudio==2.6.0", "--index-url", "https://download.pytorch.org/whl/cu124",
        ]  # fmt: skip
        constraints = install_call[install_call.index("-c") + 1]
        assert install_call[-2:] == packages
        assert (lab.server.home / ".ategnatos" / "torch-constraints.txt").read_text().split() == [
            "torch==2.6.0", "torchvision==0.21.0", "torchaudio==2.6.0",
        ]  # fmt: skip
        assert constraints.endswith("/.ategnatos/torch-constraints.txt")
        assert "2.6.0+cu124" in result["pytorch"] and "driver 550.54.14 runs CUDA up to 12.4" in result["pytorch"]
        assert lab.commits[target][:10] in result["trainer"] and "option catalogue" in result["trainer"]
        text = first.content[0].text  # type: ignore[union-attr]
        assert "PyTorch 2.6.0+cu124" in text and "train_validate_environment" in text

        again = await lab.client.call_tool("remote_deploy", {"instance": lab.key, "target": target})
        assert again.structured_content["ran"] == []  # type: ignore[index]
        assert len(lab.host.pip_calls()) == 2  # nothing installed twice


async def test_a_deployed_trainer_passes_gate_3_on_the_instance(
    tmp_path: Path, settings: Settings, app: Wiring, home: Path
) -> None:
    blackwell = {"driver": "570.124.06", "gpu": "NVIDIA GeForce RTX 5090", "compute_cap": "12.0"}
    async with rented_gpu_lab(tmp_path, settings, app, **blackwell) as lab:
        deployed = await lab.client.call_tool("remote_deploy", {"instance": lab.key, "target": "kohya"})
        assert not deployed.is_error, deployed.content
        assert "PyTorch 2.8.0+cu128" in deployed.structured_content["pytorch"]  # type: ignore[index]
        await gates_1_and_2(lab.client, home)
        check = await lab.client.call_tool(
            "train_validate_environment",
            {"name": "ink", "host": f"artist@127.0.0.1:{lab.server.port}", "upload_dataset": True, "wait_seconds": 60},
        )
        report = check.structured_content
        assert report is not None and report["passed"] is True, check.content
        assert report["facts"]["torch"] == "2.8.0+cu128 (CUDA 12.8)"
        assert report["facts"]["backend"].endswith("/sd-scripts")


async def test_remote_deploy_refuses_a_trainer_when_the_driver_is_too_old_for_the_gpu(
    tmp_path: Path, settings: Settings, app: Wiring
) -> None:
    old_driver = {"driver": "550.54.14", "gpu": "NVIDIA GeForce RTX 5090", "compute_cap": "12.0"}
    async with rented_gpu_lab(tmp_path, settings, app, **old_driver) as lab:
        refused = await lab.client.call_tool("remote_deploy", {"instance": lab.key, "target": "ai-toolkit"})
        assert refused.is_error
        text = refused.content[0].text  # type: ignore[union-attr]
        assert "needs PyTorch built for CUDA 12.8 or newer, but the driver 550.54.14 only runs CUDA up to 12.4" in text
        assert "Nothing was installed besides the watchdog" in text
        assert lab.host.pip_calls() == [] and not (lab.server.home / "ai-toolkit").exists()
        assert (lab.server.home / ".ategnatos" / "watchdog" / "watchdog.sh").is_file()
