"""Two conversations on one project start a training run, or its dry run, at the same moment: it runs once.

Two servers (two wirings, two MCP clients) on one ATEGNATOS_HOME; the stand-in trainer runs as real detached
processes on this machine (only the GPU is faked). The first server is held just before it starts the supervisor,
after every check it makes, and the second server's call comes exactly then: the window where two processes used
to both see "nothing started yet".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from ategnatos_mcp.settings import Settings
from tests.fixtures.training_exec.install import FakeInstall, make_fake_install
from tests.integration.twice import HeldHosts, Server, text_of, two_servers
from tests.tools.test_runs_tools import _through_gate_3, _through_gate_4

pytestmark = pytest.mark.integration


async def _no_ssh() -> Any:
    raise AssertionError("these tests train on this computer")


def _hosts(server: Server, fake: FakeInstall) -> HeldHosts:
    hosts = HeldHosts(server.app.settings.workspace_dir / "training", _no_ssh, local_env=fake.env)
    server.app.hosts = hosts
    return hosts


def _runs(home: Path, kind: str) -> list[str]:
    runs = home / "workspace" / "training" / "ink" / "runs"
    return sorted(r.name for r in runs.iterdir() if r.name.startswith(f"{kind}-")) if runs.is_dir() else []


async def _while_held(first: Server, hosts: HeldHosts, call: tuple[str, dict[str, Any]], second: Server) -> list[Any]:
    """``call`` on the first server, held before its supervisor starts; the same call on the second meanwhile."""
    answers: dict[str, Any] = {}

    async def one() -> None:
        answers["first"] = await first.client.call_tool(*call)

    hosts.gate.armed = True
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            await hosts.gate.reached.wait()
            answers["second"] = await second.client.call_tool(*call)
            hosts.gate.go.set()
    return [answers["first"], answers["second"]]


async def test_two_conversations_launching_at_once_start_one_training_run(
    settings: Settings, home: Path, tmp_path: Path
) -> None:
    fake = make_fake_install(tmp_path / "install")
    async with two_servers(settings) as (first, second):
        held = _hosts(first, fake)
        _hosts(second, fake)
        await _through_gate_4(first.client, home, fake, "kohya")
        started, refused = await _while_held(first, held, ("launch_training", {"name": "ink"}), second)

        assert not started.is_error, text_of(started)
        assert refused.is_error, text_of(refused)
        said = text_of(refused)
        assert "being started right now from another conversation since" in said, said
        assert "nothing was started twice" in said and "training_status(name='ink')" in said, said
        assert _runs(home, "training") == [started.structured_content["handle"]["run_dir"].rsplit("/", 1)[-1]]

        # Once it runs, the other conversation hears that it runs (and since when), not "start it".
        again = await second.client.call_tool("launch_training", {"name": "ink"})
        assert again.is_error and "still going on this machine, started" in text_of(again), text_of(again)
        finished = await second.client.call_tool("training_status", {"name": "ink", "wait_seconds": 60})
        assert finished.structured_content["state"] == "succeeded", text_of(finished)  # type: ignore[index]
    assert len(_runs(home, "training")) == 1


async def test_two_conversations_asking_for_the_dry_run_at_once_start_one(
    settings: Settings, home: Path, tmp_path: Path
) -> None:
    fake = make_fake_install(tmp_path / "install")
    async with two_servers(settings) as (first, second):
        held = _hosts(first, fake)
        _hosts(second, fake)
        await _through_gate_3(first.client, home, fake)
        call = ("train_dry_run", {"name": "ink", "wait_seconds": 0})
        started, refused = await _while_held(first, held, call, second)

        assert not started.is_error and started.structured_content["state"] == "running", text_of(started)  # type: ignore[index]
        assert refused.is_error, text_of(refused)
        assert "The dry run of 'ink' is being started right now from another conversation" in text_of(refused)
        assert len(_runs(home, "dry_run")) == 1
        # The other conversation simply follows the same dry run.
        followed = await second.client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
        assert followed.structured_content["passed"] is True, text_of(followed)  # type: ignore[index]
    assert len(_runs(home, "dry_run")) == 1
