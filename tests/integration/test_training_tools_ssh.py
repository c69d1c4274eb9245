"""The training-run tools against the real loopback SSH server: dataset upload, gates 3-4, launch, status."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from ategnatos_mcp.context import AppContext
from ategnatos_mcp.remote import SSHConnector
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.training.execution import HostRegistry
from tests.fixtures.training_exec.install import make_fake_install
from tests.integration.ssh_server import ssh_lab
from tests.tools.test_runs_tools import _gates_1_and_2

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def test_gates_launch_and_status_over_ssh(
    settings: Settings, app: AppContext, home: Path, tmp_path: Path
) -> None:
    install = make_fake_install(tmp_path / "install")
    async with ssh_lab(tmp_path) as (server, connector, _remote):

        async def the_connector() -> SSHConnector:
            return connector

        app.services["training-hosts"] = HostRegistry(
            settings.workspace_dir / "training", the_connector, remote_env=install.env
        )
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
