"""The training-run tools against the real loopback SSH server: dataset upload, gates 3-4, launch, status, the
evaluation on the instance's ComfyUI and the chosen LoRA brought home."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from ategnatos_mcp.progress import Progress
from ategnatos_mcp.providers import Deployer, DeployPlan, InstanceStatus, Rental
from ategnatos_mcp.remote import SSHConnector, TransferError
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.training.execution import HostRegistry, HostSpec, SSHTrainingHost, TrainingHost
from ategnatos_mcp.wiring import Wiring
from tests.support.fake_comfyui import serve_fake
from tests.support.fake_install import make_fake_install
from tests.support.ink_run import gates_1_and_2
from tests.support.ssh_server import ssh_lab

pytestmark = pytest.mark.integration


async def _comfyui_on_the_rental(
    app: Any, fake: Any, server: Any, lab_host: Any, connector: Any, stack: Any, provider: str, instance_id: str
) -> str:
    """The rented instance runs ComfyUI (the fake, reading the instance's ~/ComfyUI/models, with the base model),
    deployed by the real Deployer over the instance's SSH session; the tunnel's URL."""
    fake.models_dir = server.home / "ComfyUI" / "models"
    fake.add_model("checkpoints", "sdxl.safetensors")
    rental = Rental(
        provider=provider,
        instance_id=instance_id,
        status=InstanceStatus.RUNNING,
        started_at=datetime.now(UTC),
        ssh_host=lab_host.host,
        ssh_port=lab_host.port,
        ssh_user=lab_host.username,
    )
    deployer = Deployer(connector, stack)
    plan = DeployPlan(target="comfyui", steps=[], comfyui_port=fake.port, forward=True, ready_seconds=5)
    tunnel = (await deployer.deploy(rental, plan)).comfyui_url
    assert tunnel is not None
    app.deployer = deployer
    return tunnel


async def test_gates_launch_and_status_over_ssh(settings: Settings, app: Wiring, home: Path, tmp_path: Path) -> None:
    install = make_fake_install(tmp_path / "install")
    async with ssh_lab(tmp_path) as (server, connector, _remote):

        async def the_connector() -> SSHConnector:
            return connector

        app.hosts = HostRegistry(settings.workspace_dir / "training", the_connector, remote_env=install.env)
        host = f"artist@127.0.0.1:{server.port}"
        kohya = install.backend_dirs["kohya"]
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            await gates_1_and_2(client, home)
            bare = await client.call_tool(
                "train_validate_environment", {"name": "ink", "host": host, "backend_dir": kohya}
            )
            check = bare.structured_content
            assert check is not None and check["passed"] is False, bare.content
            assert any("upload_dataset=true" in p for p in check["problems"])

            sent = await client.call_tool(
                "train_validate_environment",
                {"name": "ink", "host": host, "backend_dir": kohya, "upload_dataset": True},
            )
            assert sent.structured_content["passed"] is True, sent.content  # type: ignore[index]
            assert sent.structured_content["host"] == f"127.0.0.1:{server.port}"  # type: ignore[index]
            assert len(list((server.home / "ategnatos" / "training" / "ink" / "dataset").glob("*.png"))) == 10

            dry = await client.call_tool("train_dry_run", {"name": "ink", "host": host, "wait_seconds": 60})
            assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
            launched = await client.call_tool("launch_training", {"name": "ink", "host": host})
            assert not launched.is_error, launched.content
            server.cut()  # the connection drops; the run goes on and the next call reconnects

            status = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60})
            report = status.structured_content
            assert report is not None and report["state"] == "succeeded", status.content
            finals = [c["file"] for c in report["checkpoints"] if c["kind"] == "final"]
            assert finals and finals[0].startswith(str(server.home)) and Path(finals[0]).is_file()
            samples = report["samples"]
            assert samples["total"] == samples["new"] == 2 * report["status"]["total_epochs"] > 0
            for sample in samples["samples"]:  # copied into the workspace before they are shown
                assert sample["file"].startswith(str(server.home))
                assert sample["local_path"].startswith(str(settings.workspace_dir / "training" / "ink" / "samples"))
                assert Path(sample["local_path"]).read_bytes() == Path(sample["file"]).read_bytes()
            assert len([c for c in status.content if c.type == "image"]) == 4


@dataclass
class HeldUploads(HostRegistry):
    """The real registry; each dataset upload waits for ``release`` first (a slow link, without sleeping)."""

    release: anyio.Event = field(default_factory=anyio.Event)
    started: anyio.Event = field(default_factory=anyio.Event)
    uploads: list[str] = field(default_factory=list)
    fail: bool = False

    @contextlib.asynccontextmanager
    async def open(self, spec: HostSpec) -> AsyncIterator[TrainingHost]:
        async with super().open(spec) as host:
            assert isinstance(host, SSHTrainingHost)
            send = host.put_dataset

            async def held(local: Path, remote: str, progress: Progress | None) -> str:
                self.uploads.append(remote)
                self.started.set()
                await self.release.wait()
                if self.fail:
                    raise TransferError("The connection dropped 6 times.", hint="Try again later.")
                return await send(local, remote, progress)

            host.put_dataset = held  # type: ignore[method-assign]
            yield host


async def test_a_long_dataset_upload_goes_on_in_the_background_and_is_sent_once(
    settings: Settings, app: Wiring, home: Path, tmp_path: Path
) -> None:
    install = make_fake_install(tmp_path / "install")
    async with ssh_lab(tmp_path) as (server, connector, _remote):

        async def the_connector() -> SSHConnector:
            return connector

        registry = HeldUploads(settings.workspace_dir / "training", the_connector, remote_env=install.env)
        app.hosts = registry
        args = {
            "name": "ink",
            "host": f"artist@127.0.0.1:{server.port}",
            "backend_dir": install.backend_dirs["kohya"],
            "upload_dataset": True,
            "wait_seconds": 0,
        }
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            await gates_1_and_2(client, home)
            first = await client.call_tool("train_validate_environment", args)
            assert not first.is_error, first.content
            check = first.structured_content
            assert check is not None and check["upload"]["state"] == "sending" and check["passed"] is False
            assert "goes on in the background" in first.content[0].text  # type: ignore[union-attr]
            gates = await client.call_tool("train_gates", {"name": "ink"})
            environment = gates.structured_content["gates"][2]  # type: ignore[index]
            assert "being sent to 127.0.0.1" in environment["detail"], environment
            assert environment["status"] == "pending"  # not "failed": nothing was found wrong
            assert "… Gate 3 (environment)" in gates.content[0].text  # type: ignore[union-attr]
            assert "still being sent" in gates.structured_content["next_step"]  # type: ignore[index]

            with anyio.fail_after(5):
                await registry.started.wait()  # the upload reached the sending stage
            again = await client.call_tool("train_validate_environment", args)
            assert again.structured_content["upload"]["state"] == "sending", again.content  # type: ignore[index]
            assert "still being sent" in again.structured_content["problems"][0]  # type: ignore[index]
            assert len(registry.uploads) == 1  # the repeat call found the same upload

            registry.release.set()
            done = await client.call_tool("train_validate_environment", {**args, "wait_seconds": 60})
            result = done.structured_content
            assert result is not None and result["passed"] is True, done.content
            assert result["dataset_uploaded"] is True and result["upload"] is None
            assert len(registry.uploads) == 1
            assert len(list((server.home / "ategnatos" / "training" / "ink" / "dataset").glob("*.png"))) == 10
            gates = await client.call_tool("train_gates", {"name": "ink"})
            assert gates.structured_content["gates"][2]["status"] == "passed"  # type: ignore[index]


async def test_a_failed_background_upload_says_so_and_the_next_call_sends_again(
    settings: Settings, app: Wiring, home: Path, tmp_path: Path
) -> None:
    install = make_fake_install(tmp_path / "install")
    async with ssh_lab(tmp_path) as (server, connector, _remote):

        async def the_connector() -> SSHConnector:
            return connector

        registry = HeldUploads(settings.workspace_dir / "training", the_connector, remote_env=install.env, fail=True)
        registry.release.set()
        app.hosts = registry
        args = {
            "name": "ink",
            "host": f"artist@127.0.0.1:{server.port}",
            "backend_dir": install.backend_dirs["kohya"],
            "upload_dataset": True,
            "wait_seconds": 60,
        }
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            await gates_1_and_2(client, home)
            failed = await client.call_tool("train_validate_environment", args)
            check = failed.structured_content
            assert check is not None and check["passed"] is False and check["upload"]["state"] == "failed"
            problem = check["problems"][0]
            assert "failed: The connection dropped 6 times. Try again later." in problem
            assert "what arrived is kept" in problem
            assert check["gates"]["environment"]["status"] == "failed"

            registry.fail = False
            sent = await client.call_tool("train_validate_environment", args)
            assert sent.structured_content["passed"] is True, sent.content  # type: ignore[index]
            assert len(registry.uploads) == 2  # the failed one, then a new one


async def test_a_rented_run_is_evaluated_on_the_instances_comfyui_and_the_kept_save_comes_home_after_a_cut(
    settings: Settings, app: Wiring, home: Path, tmp_path: Path
) -> None:
    install = make_fake_install(tmp_path / "install")
    big = 3_000_000  # bytes per save: a download the test can cut in the middle
    async with ssh_lab(tmp_path) as (server, connector, lab_host), serve_fake() as fake, AsyncExitStack() as stack:

        async def the_connector() -> SSHConnector:
            return connector

        app.hosts = HostRegistry(
            settings.workspace_dir / "training", the_connector, remote_env={**install.env, "FAKE_SAVE_BYTES": str(big)}
        )
        # The instance runs ComfyUI (here: the fake, reading the instance's ~/ComfyUI/models), reached through the
        # tunnel remote_deploy opens; the real Deployer holds the instance's SSH session.
        tunnel = await _comfyui_on_the_rental(app, fake, server, lab_host, connector, stack, "runpod", "pod1")
        host = f"artist@127.0.0.1:{server.port}"
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            (await app.comfyui_pool()).add_server(tunnel)  # what remote_deploy does with the tunnel
            await gates_1_and_2(client, home)
            for tool, args in (
                ("train_validate_environment", {"backend_dir": install.backend_dirs["kohya"], "upload_dataset": True}),
                ("train_dry_run", {"wait_seconds": 60}),
                ("launch_training", {}),
                ("training_status", {"wait_seconds": 60, "previews": 0}),
            ):
                result = await client.call_tool(
                    tool,
                    {"name": "ink", "host": host, **args} if tool != "training_status" else {"name": "ink", **args},
                )
                assert not result.is_error, (tool, result.content)
            saves = [Path(c["file"]) for c in result.structured_content["checkpoints"]]  # type: ignore[index]

            sheet = await client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 60})
            answer = sheet.structured_content
            assert answer is not None and answer["state"] == "done", sheet.content
            assert answer["server"] == tunnel
            on_instance = server.home / "ComfyUI" / "models" / "loras" / "ategnatos" / "ink"
            assert sorted(p.name for p in on_instance.iterdir()) == sorted(s.name for s in saves[-3:])
            assert all((on_instance / s.name).read_bytes() == s.read_bytes() for s in saves[-3:])
            # copied on the instance itself: nothing travelled through this computer
            assert not (settings.workspace_dir / "training" / "ink" / "loras").exists()

            server.cut_after_read_bytes = big // 2  # the link drops halfway through the download
            kept = await client.call_tool(
                "train_evaluate", {"name": "ink", "action": "keep", "epoch": len(saves), "weight": 1.0}
            )
            assert kept.structured_content["state"] == "done", kept.content  # type: ignore[index]
            assert server.cuts == 1
            home_copy = settings.workspace_dir / "loras" / "ink" / "ink.safetensors"
            assert home_copy.read_bytes() == saves[-1].read_bytes() and home_copy.stat().st_size > big
            assert kept.structured_content["kept"]["provenance"]["source"] == f"127.0.0.1:{server.port}:{saves[-1]}"  # type: ignore[index]
            assert not list(home_copy.parent.glob("*.part"))


async def test_a_local_run_is_evaluated_on_a_rented_comfyui_its_saves_uploaded_over_sftp_after_a_cut(
    settings: Settings, app: Wiring, home: Path, tmp_path: Path
) -> None:
    install = make_fake_install(tmp_path / "install")
    big = 2_000_000
    async with ssh_lab(tmp_path) as (server, connector, lab_host), serve_fake() as fake, AsyncExitStack() as stack:

        async def no_ssh() -> SSHConnector:
            raise AssertionError("the run trains on this machine")

        app.hosts = HostRegistry(
            settings.workspace_dir / "training", no_ssh, local_env={**install.env, "FAKE_SAVE_BYTES": str(big)}
        )
        tunnel = await _comfyui_on_the_rental(app, fake, server, lab_host, connector, stack, "vast", "42")
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            (await app.comfyui_pool()).add_server(tunnel)
            await gates_1_and_2(client, home)
            for tool, args in (
                ("train_validate_environment", {"backend_dir": install.backend_dirs["kohya"]}),
                ("train_dry_run", {"wait_seconds": 60}),
                ("launch_training", {}),
                ("training_status", {"wait_seconds": 60, "previews": 0}),
            ):
                result = await client.call_tool(tool, {"name": "ink", **args})
                assert not result.is_error, (tool, result.content)
            saves = [Path(c["file"]) for c in result.structured_content["checkpoints"]]  # type: ignore[index]

            server.cut_after_bytes = big + big // 2  # the link drops while the second save is being sent
            sheet = await client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 60})
            answer = sheet.structured_content
            assert answer is not None and answer["state"] == "done", sheet.content
            assert server.cuts == 1
            on_instance = server.home / "ComfyUI" / "models" / "loras" / "ategnatos" / "ink"
            assert all((on_instance / s.name).read_bytes() == s.read_bytes() for s in saves[-3:])
            assert not list(on_instance.glob("*.part"))
            assert {lora for p in fake.prompts for lora in _loras(p)} >= {(f"ategnatos/ink/{saves[-1].name}", 1.0)}


def _loras(prompt: dict[str, Any]) -> list[tuple[str, float]]:
    return [
        (node["inputs"]["lora_name"], node["inputs"]["strength_model"])
        for node in prompt.values()
        if node["class_type"] == "LoraLoader"
    ]
