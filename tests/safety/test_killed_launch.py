"""A server killed while it starts a training run never leaves a trainer nobody knows about (on a rented host, one
that bills) beside a second one: the run is recorded before its supervisor starts.

The real server runs as a subprocess over stdio (``paused.py``) on the stand-in trainer (real detached supervisor
and trainer processes; only the GPU is faked) and is SIGKILLed at a chosen write of ``launch_training``:

- at the run's first record: before the fix, the supervisor had already started and nothing recorded it, so the
  next launch started a second trainer; now the record comes first, the start never happened, and the next launch
  starts the one run;
- at the gates' note that training began (after the supervisor started): the next launch is refused as still going,
  and training_status follows the run the killed server started to its end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import load_settings
from ategnatos_mcp.training.execution import HostRegistry
from tests.safety.session import text_of
from tests.support.fake_install import FakeInstall, make_fake_install
from tests.support.ink_run import through_gate_3, through_gate_4
from tests.support.paused import NO_COMFYUI, paused_call

pytestmark = [pytest.mark.integration]


async def _no_ssh() -> Any:
    raise AssertionError("these tests train on this computer")


def _server(home: Path, fake: FakeInstall) -> Client:
    settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": NO_COMFYUI})
    app = build_app(settings)
    app.hosts = HostRegistry(settings.workspace_dir / "training", _no_ssh, local_env=fake.env)
    return Client(build_server(settings, app=app), raise_exceptions=False)


def _started(home: Path) -> list[str]:
    """Training runs whose supervisor really started (it writes its status first)."""
    runs = home / "workspace" / "training" / "ink" / "runs"
    return sorted(r.name for r in runs.glob("training-*") if (r / "status.json").exists())


@pytest.mark.parametrize(
    ("pattern", "next_launch"),
    [("training+ink+runs.json", "starts the one run"), ("training+ink.json", "is refused: it runs")],
    ids=["killed at the run's first record", "killed once the supervisor started"],
)
async def test_a_launch_killed_part_way_never_leaves_two_trainers(
    home: Path, tmp_path: Path, pattern: str, next_launch: str
) -> None:
    fake = make_fake_install(tmp_path / "install")
    async with _server(home, fake) as client:
        await through_gate_4(client, home, fake, "kohya")
    go = tmp_path / "go"
    fake.env["FAKE_WAIT_FILE"] = str(go)  # a trainer waits before its last step until the test lets it finish
    try:
        async with paused_call(home, ("launch_training", {"name": "ink"}), pattern, 0, env=fake.env):
            pass
        # Whatever runs now, the records know: nothing started before the run was recorded.
        assert len(_started(home)) == (0 if next_launch == "starts the one run" else 1)
        async with _server(home, fake) as client:
            again = await client.call_tool("launch_training", {"name": "ink"})
            if next_launch == "starts the one run":
                assert not again.is_error, text_of(again)
            else:
                assert again.is_error and "still going on this machine" in text_of(again), text_of(again)
            go.touch()
            status = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60})
            assert status.structured_content["state"] == "succeeded", text_of(status)  # type: ignore[index]
            gates = await client.call_tool("train_gates", {"name": "ink"})
            assert gates.structured_content["training"]["state"] == "succeeded", text_of(gates)  # type: ignore[index]
        assert len(_started(home)) == 1
    finally:
        go.touch()  # never a stand-in trainer left waiting after the test


async def test_a_dry_run_killed_before_its_supervisor_started_is_started_by_the_next_call(
    home: Path, tmp_path: Path
) -> None:
    fake = make_fake_install(tmp_path / "install")
    async with _server(home, fake) as client:
        await through_gate_3(client, home, fake)
    async with paused_call(home, ("train_dry_run", {"name": "ink"}), "training+ink+runs.json", 0, env=fake.env):
        pass
    async with _server(home, fake) as client:
        dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
        assert dry.structured_content["passed"] is True, text_of(dry)  # type: ignore[index]
    runs = home / "workspace" / "training" / "ink" / "runs"
    assert len([r for r in runs.glob("dry_run-*") if (r / "status.json").exists()]) == 1
