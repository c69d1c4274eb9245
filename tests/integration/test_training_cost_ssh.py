"""training_status on a rented GPU (the loopback SSH server standing in for it): time left and what the run costs,
at the rate the GPU ledger holds for that instance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from mcp import Client

from ategnatos_mcp.providers import GPU_DOCUMENT, GpuDocument, InstanceStatus, Rental
from ategnatos_mcp.providers.rental.ledger import open_rental, sync_studio
from ategnatos_mcp.remote import SSHConnector
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.training.execution import HostRegistry
from ategnatos_mcp.wiring import Wiring
from tests.support.fake_install import make_fake_install
from tests.support.ink_run import gates_1_and_2
from tests.support.ssh_server import ssh_lab

pytestmark = [pytest.mark.integration]


class Clock:
    """This computer's clock, moved forward by hand (the host's own clock keeps real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_a_run_on_a_rented_gpu_shows_its_cost_so_far_and_in_all(
    settings: Settings, app: Wiring, home: Path, tmp_path: Path
) -> None:
    install = make_fake_install(tmp_path / "install")
    clock = Clock()
    app.clock = clock
    go = tmp_path / "go"
    async with ssh_lab(tmp_path) as (server, connector, _remote):

        async def the_connector() -> SSHConnector:
            return connector

        registry = HostRegistry(settings.workspace_dir / "training", the_connector, remote_env=install.env)
        app.hosts = registry
        # What gpu_spinup leaves behind: the rental in the ledger (rented an hour ago) and in the studio.
        async with app.store.update(GPU_DOCUMENT, GpuDocument) as upd:
            rental = Rental(
                provider="runpod", instance_id="pod123", name="ink-gpu", gpu="RTX 4090", usd_per_hour=0.69,
                status=InstanceStatus.RUNNING, started_at=clock.now - timedelta(hours=1), ready=True,
                ssh_host="127.0.0.1", ssh_port=server.port, ssh_user="artist",
            )  # fmt: skip
            open_rental(upd.doc, rental)
            await sync_studio(app.store, upd.doc)
        host = "runpod:pod123"
        kohya = install.backend_dirs["kohya"]
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            await gates_1_and_2(client, home)
            env = await client.call_tool(
                "train_validate_environment",
                {"name": "ink", "host": host, "backend_dir": kohya, "upload_dataset": True},
            )
            assert env.structured_content["passed"] is True, env.content  # type: ignore[index]
            dry = await client.call_tool("train_dry_run", {"name": "ink", "host": host, "wait_seconds": 60})
            assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
            registry.remote_env = {**install.env, "FAKE_WAIT_FILE": str(go), "FAKE_SECONDS_PER_STEP": "1500"}
            launched = await client.call_tool("launch_training", {"name": "ink", "host": host})
            assert not launched.is_error, launched.content
            with anyio.fail_after(30):  # until it is held before its last step (25 minutes left on its bar)
                while True:
                    report = (
                        await client.call_tool("training_status", {"name": "ink", "previews": 0})
                    ).structured_content
                    assert report is not None
                    if (
                        report["status"]["total_steps"]
                        and report["status"]["step"] == report["status"]["total_steps"] - 1
                    ):
                        break
                    await anyio.sleep(0.05)

            clock.now += timedelta(hours=2)  # two hours into the run
            status = await client.call_tool("training_status", {"name": "ink", "previews": 0})
            report = status.structured_content
            assert report is not None and report["state"] == "running", status.content
            assert report["time_left"]["words"] == "about 25 minutes"
            cost = report["cost"]
            assert cost["instance"] == "runpod:pod123" and cost["usd_per_hour"] == 0.69
            assert cost["hours_so_far"] == 2.0 and cost["usd_so_far"] == 1.38
            assert cost["usd_to_finish"] == pytest.approx(0.2875) and cost["usd_projected"] == pytest.approx(1.6675)
            assert cost["instance_usd_so_far"] == pytest.approx(2.07)  # rented an hour before the run began
            assert (
                "Cost: On runpod:pod123 (RTX 4090) at $0.69/hour: $1.38 so far for this run, about $0.29 more to "
                "finish, about $1.67 in all. The instance has cost $2.07 since it was rented and bills until it is "
                "torn down (gpu_teardown)."
            ) in status.content[0].text  # type: ignore[union-attr]

            # The provider corrected its price: the ledger's rate is the one used (never a copy of it).
            async with app.store.update(GPU_DOCUMENT, GpuDocument) as upd:
                key = "runpod:pod123"
                upd.doc.rentals[key] = upd.doc.rentals[key].model_copy(update={"usd_per_hour": 0.79})
            repriced = await client.call_tool("training_status", {"name": "ink", "previews": 0})
            assert repriced.structured_content["cost"]["usd_so_far"] == 1.58  # type: ignore[index]

            go.touch()
            done = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "previews": 0})
            final = done.structured_content
            assert final is not None and final["state"] == "succeeded", done.content
            assert final["cost"]["usd_to_finish"] is None and final["cost"]["usd_projected"] is None
