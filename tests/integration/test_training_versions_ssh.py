"""On a rented host (the real loopback SSH server): a finished run is not trained over, a new version has its own
folder there, and the earlier run's files stay byte for byte. train_gates asks the host how a run ended.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest
from mcp import Client

from ategnatos_mcp.remote import SSHConnector
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.training.execution import HostRegistry
from ategnatos_mcp.wiring import Wiring
from tests.support.fake_install import make_fake_install
from tests.support.ink_run import PLAN, first_text, gates_1_and_2
from tests.support.ssh_server import ssh_lab
from tests.support.training import file_hashes

pytestmark = pytest.mark.integration


async def _gates_3_and_4(client: Client, name: str, host: str, backend_dir: str) -> None:
    sent = await client.call_tool(
        "train_validate_environment",
        {"name": name, "host": host, "backend_dir": backend_dir, "upload_dataset": True, "wait_seconds": 60},
    )
    assert sent.structured_content["passed"] is True, sent.content  # type: ignore[index]
    dry = await client.call_tool("train_dry_run", {"name": name, "host": host, "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]


async def test_a_finished_run_on_a_rented_host_is_not_trained_over_and_its_new_version_trains_beside_it(
    settings: Settings, app: Wiring, home: Path, tmp_path: Path
) -> None:
    install = make_fake_install(tmp_path / "install")
    async with ssh_lab(tmp_path) as (server, connector, _remote):

        async def the_connector() -> SSHConnector:
            return connector

        app.hosts = HostRegistry(settings.workspace_dir / "training", the_connector, remote_env=install.env)
        host = f"artist@127.0.0.1:{server.port}"
        kohya = install.backend_dirs["kohya"]
        remote = server.home / "ategnatos" / "training"
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            await gates_1_and_2(client, home)
            await _gates_3_and_4(client, "ink", host, kohya)
            launched = await client.call_tool("launch_training", {"name": "ink", "host": host})
            assert not launched.is_error, launched.content
            status_file = Path(launched.structured_content["handle"]["run_dir"]) / "status.json"  # type: ignore[index]
            with anyio.fail_after(30):  # nobody asks training_status: the run ends on the host by itself
                while json.loads(status_file.read_text())["state"] != "succeeded":
                    await anyio.sleep(0.05)

            gates = await client.call_tool("train_gates", {"name": "ink"})  # asks the host how it ended
            assert gates.structured_content["training"]["state"] == "succeeded", gates.content  # type: ignore[index]
            assert "training can be launched" not in first_text(gates) and "'ink-v2'" in first_text(gates)
            v1 = file_hashes(remote / "ink")
            assert "output/ink.safetensors" in v1 and "output/ink-000001.safetensors" in v1
            again = await client.call_tool("launch_training", {"name": "ink", "host": host})
            assert again.is_error and "already finished training" in first_text(again), first_text(again)

            planned = await client.call_tool("train_plan", PLAN)
            plan = planned.structured_content
            assert plan is not None and plan["name"] == "ink-v2", planned.content
            assert plan["gates"]["dataset"]["status"] == "passed"
            confirmed = await client.call_tool("train_confirm", {"name": "ink-v2", "config_hash": plan["config_hash"]})
            assert not confirmed.is_error, confirmed.content
            await _gates_3_and_4(client, "ink-v2", host, kohya)
            assert not (await client.call_tool("launch_training", {"name": "ink-v2", "host": host})).is_error
            status = await client.call_tool("training_status", {"name": "ink-v2", "wait_seconds": 60, "previews": 0})
            report = status.structured_content
            assert report is not None and report["state"] == "succeeded", status.content
            finals = [c["file"] for c in report["checkpoints"] if c["kind"] == "final"]
            assert finals == [str(remote / "ink-v2" / "output" / "ink-v2.safetensors")]
            assert file_hashes(remote / "ink") == v1  # saves, states, samples, logs, dataset copy: byte for byte


async def test_a_stopped_run_on_a_rented_host_is_refused_in_place_and_resumes_without_touching_its_saves(
    settings: Settings, app: Wiring, home: Path, tmp_path: Path
) -> None:
    install = make_fake_install(tmp_path / "install")
    go = tmp_path / "go"
    async with ssh_lab(tmp_path) as (server, connector, _remote):

        async def the_connector() -> SSHConnector:
            return connector

        registry = HostRegistry(settings.workspace_dir / "training", the_connector, remote_env=install.env)
        app.hosts = registry
        host = f"artist@127.0.0.1:{server.port}"
        output = server.home / "ategnatos" / "training" / "ink" / "output"
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            await gates_1_and_2(client, home)
            await _gates_3_and_4(client, "ink", host, install.backend_dirs["kohya"])
            # held before its last step; like a real trainer it takes a moment to exit when told to stop
            registry.remote_env = {**install.env, "FAKE_WAIT_FILE": str(go), "FAKE_SLOW_EXIT": "1"}
            assert not (await client.call_tool("launch_training", {"name": "ink", "host": host})).is_error
            with anyio.fail_after(30):
                while True:
                    status = (
                        await client.call_tool("training_status", {"name": "ink", "previews": 0})
                    ).structured_content
                    assert status is not None
                    if (
                        status["status"]["total_steps"]
                        and status["status"]["step"] == status["status"]["total_steps"] - 1
                    ):
                        break
                    await anyio.sleep(0.05)
            stopped = await client.call_tool("launch_training", {"name": "ink", "action": "stop"})
            report = stopped.structured_content
            assert report is not None and report["status"]["state"] == "stopped", stopped.content  # recorded, not lost
            with pytest.raises(ProcessLookupError):  # the trainer is gone too: it writes nothing more
                os.kill(status["status"]["child_pid"], 0)
            saves = {p.name: p.read_bytes() for p in output.glob("ink-*.safetensors")}
            assert saves and report["resume_from_step"]

            again = await client.call_tool("launch_training", {"name": "ink", "host": host})
            assert again.is_error and "was stopped while training" in first_text(again), first_text(again)
            assert f"continues it from step {report['resume_from_step']}" in first_text(again)
            go.touch()
            resumed = await client.call_tool("launch_training", {"name": "ink", "host": host, "resume": True})
            assert not resumed.is_error, resumed.content
            assert resumed.structured_content["resumed_from_step"] == report["resume_from_step"]  # type: ignore[index]
            done = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "previews": 0})
            assert done.structured_content["state"] == "succeeded", done.content  # type: ignore[index]
            assert {name: (output / name).read_bytes() for name in saves} == saves  # byte for byte
            assert (output / "ink.safetensors").is_file()
