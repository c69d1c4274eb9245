"""A training run over the real loopback SSH server: launched detached, the connection cut, then re-attached."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from ategnatos_mcp.remote import SSHConnector
from ategnatos_mcp.training.execution import HostRegistry, HostSpec, parse_log
from ategnatos_mcp.training.execution.runner import host_dataset_dir, read_log_tail, read_status, start_run
from tests.support.fake_install import make_fake_install
from tests.support.ssh_server import ssh_lab
from tests.support.training import make_config

pytestmark = pytest.mark.integration


async def test_run_survives_a_cut_connection_and_a_new_session_reattaches(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for i in range(6):
        (dataset / f"img{i}.png").write_bytes(b"png")
        (dataset / f"img{i}.txt").write_text("ink_style, a drawing", encoding="utf-8")
    install = make_fake_install(tmp_path / "install")
    go = tmp_path / "go"
    cfg = make_config(dataset, images=6, batch_size=4)
    async with ssh_lab(tmp_path) as (server, connector, remote):

        async def the_connector() -> SSHConnector:
            return connector

        registry = HostRegistry(tmp_path / "unused-local-runs", the_connector)
        spec = HostSpec(kind="ssh", host=remote.host, port=remote.port, username=remote.username, name=remote.name)
        async with registry.open(spec) as host:
            remote_dataset = await host_dataset_dir(host, cfg)
            await host.put_dataset(dataset, remote_dataset, None)
            handle = await start_run(
                host,
                kind="training",
                cfg=cfg,
                backend="kohya",
                backend_dir=install.backend_dirs["kohya"],
                dataset_dir=remote_dataset,
                now=datetime(2026, 11, 29, 17, 0, tzinfo=UTC),
                env={**install.env, "FAKE_OOM_ABOVE": "2", "FAKE_WAIT_FILE": str(go)},
            )
            assert handle.run_dir.startswith(str(server.home))
            with anyio.fail_after(20):
                while (status := await read_status(host, handle)).attempt < 2 or status.step < 1:
                    await anyio.sleep(0.05)
            assert status.batch_size == 2 and status.gradient_accumulation == 2
            server.cut()

        async with registry.open(spec) as host:
            again = await read_status(host, handle)
            assert again.state == "running" and again.pid == status.pid
            go.touch()
            with anyio.fail_after(20):
                while not (final := await read_status(host, handle)).finished:
                    await anyio.sleep(0.05)
            assert final.state == "succeeded"
            assert [a["batch_size"] for a in final.attempts] == [4, 2]
            assert (server.home / ".ategnatos" / "watchdog" / "heartbeat").is_file()  # the idle watchdog saw work
            log = await read_log_tail(host, handle)
        progress = parse_log("kohya", log)
        assert progress.completed and progress.errors[0].id == "oom_allocator"
        assert progress.checkpoints[-1].file == f"{handle.output_dir}/ink.safetensors"
        assert Path(progress.checkpoints[-1].file).is_file()
