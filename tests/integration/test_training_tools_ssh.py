"""The training-run tools against the real loopback SSH server: dataset upload, gates 3-4, launch, status."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from mcp import Client

from ategnatos_mcp.progress import Progress
from ategnatos_mcp.remote import SSHConnector, TransferError
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.training.execution import HostRegistry, HostSpec, SSHTrainingHost, TrainingHost
from ategnatos_mcp.wiring import Wiring
from tests.fixtures.training_exec.install import make_fake_install
from tests.integration.ssh_server import ssh_lab
from tests.tools.test_runs_tools import _gates_1_and_2

pytestmark = pytest.mark.integration


async def test_gates_launch_and_status_over_ssh(settings: Settings, app: Wiring, home: Path, tmp_path: Path) -> None:
    install = make_fake_install(tmp_path / "install")
    async with ssh_lab(tmp_path) as (server, connector, _remote):

        async def the_connector() -> SSHConnector:
            return connector

        app.hosts = HostRegistry(settings.workspace_dir / "training", the_connector, remote_env=install.env)
        host = f"artist@127.0.0.1:{server.port}"
        kohya = install.backend_dirs["kohya"]
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            await _gates_1_and_2(client, home)
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
            await _gates_1_and_2(client, home)
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
            await _gates_1_and_2(client, home)
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
