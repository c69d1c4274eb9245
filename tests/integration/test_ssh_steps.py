"""Idempotent setup steps: done-markers on the host let a rerun continue where it stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.remote import Step, StepFailedError, forget_steps, run_steps
from tests.support.ssh_server import ssh_lab

pytestmark = pytest.mark.integration


def _steps(fail_second: bool) -> list[Step]:
    second = "test -f fixed || { echo 'pip: no matching distribution' >&2; exit 2; }; echo deps >> ran.log"
    return [
        Step(name="clone", command="echo clone >> ran.log", description="download ComfyUI"),
        Step(name="deps", command=second if fail_second else "echo deps >> ran.log", description="install"),
        Step(name="models", command="echo models >> ran.log"),
    ]


async def test_rerun_after_a_failure_skips_what_is_done_and_continues(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        with pytest.raises(StepFailedError) as caught:
            await run_steps(ssh, _steps(fail_second=True))
        failure = caught.value
        assert failure.step.name == "deps" and failure.exit_status == 2
        assert "no matching distribution" in failure.stderr_tail
        assert failure.message == (
            "Setup step 'deps' (install) failed with exit status 2: pip: no matching distribution. "
            "Steps complete: clone."
        )
        assert [(s.name, s.result) for s in failure.report.steps] == [
            ("clone", "done"),
            ("deps", "failed"),
            ("models", "not_run"),
        ]
        assert (server.home / ".ategnatos/steps/clone.done").exists()
        assert not (server.home / ".ategnatos/steps/deps.done").exists()

        (server.home / "fixed").touch()
        seen: list[tuple[float, float | None, str]] = []

        async def progress(done: float, total: float | None, message: str) -> None:
            seen.append((done, total, message))

        report = await run_steps(ssh, _steps(fail_second=True), progress)
        assert report.ok
        assert report.skipped == ["clone"] and report.ran == ["deps", "models"]
        assert (server.home / "ran.log").read_text().split() == ["clone", "deps", "models"]
        assert seen[0] == (0.0, 3.0, "clone: download ComfyUI") and seen[-1][0] == 3.0

        third = await run_steps(ssh, _steps(fail_second=True))
        assert third.ran == [] and third.skipped == ["clone", "deps", "models"]


async def test_changed_command_or_forgotten_marker_runs_the_step_again(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        await run_steps(ssh, _steps(fail_second=False))
        changed = [*_steps(fail_second=False)[:2], Step(name="models", command="echo models-v2 >> ran.log")]
        assert (await run_steps(ssh, changed)).ran == ["models"]
        await forget_steps(ssh, ["clone"])
        assert (await run_steps(ssh, changed)).ran == ["clone"]
        assert (server.home / "ran.log").read_text().split() == ["clone", "deps", "models", "models-v2", "clone"]


async def test_step_whose_result_is_already_in_place_is_not_run(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        (server.home / "ComfyUI").mkdir()
        step = Step(name="clone", command="echo cloned >> ran.log", check="test -d ComfyUI")
        report = await run_steps(ssh, [step])
        assert [s.result for s in report.steps] == ["already_in_place"]
        assert not (server.home / "ran.log").exists()
        assert (server.home / ".ategnatos/steps/clone.done").exists()


async def test_step_interrupted_by_a_dropped_connection_is_retried_after_reconnecting(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        # The first attempt prints the cue on which the test server drops the connection, mid-step.
        server.cut_on_output = b"CUT-HERE"
        flaky = Step(name="flaky", command="if [ ! -f tried ]; then touch tried; echo CUT-HERE; sleep 30; fi; echo ok")
        report = await run_steps(ssh, [flaky])
        assert report.ran == ["flaky"]
        assert server.cuts == 1 and ssh.reconnects == 1
        assert report.steps[0].output_tail == "ok\n"


async def test_repeated_or_unsafe_step_names_are_refused_before_anything_runs(tmp_path: Path) -> None:
    async with ssh_lab(tmp_path) as (server, connector, host), connector.session(host) as ssh:
        twice = [Step(name="a", command="touch ran"), Step(name="a", command="touch ran")]
        with pytest.raises(InvalidRequestError):
            await run_steps(ssh, twice)
        with pytest.raises(InvalidRequestError):
            await forget_steps(ssh, ["../../etc"])
        assert not (server.home / "ran").exists()
