"""A trained run is never trained over: relaunch after success, failure and stop, new versions, resume.

Through a real MCP client on the stand-in trainer (real detached supervisor and trainer processes on this
machine; only the GPU is faked). Each save the stand-in writes holds its process id and time, so a save that was
written again is caught by comparing bytes.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from ategnatos_mcp.wiring import Wiring
from tests.support.fake_install import FakeInstall
from tests.support.ink_run import PLAN, first_text, held_then_stopped, local_fake_install, through_gate_4
from tests.support.training import file_hashes


def _run_files(home: Path, name: str) -> dict[str, str]:
    """What a run made: its saves, logs and samples, its plan files and its records."""
    return {
        **{f"run/{k}": v for k, v in file_hashes(home / "workspace" / "training" / name).items()},
        **{f"configs/{k}": v for k, v in file_hashes(home / "workspace" / "configs" / name).items()},
        **{f"records/{k}": v for k, v in file_hashes(home / "grimoire" / "training" / name).items()},
    }


async def _finished(client: Client, name: str) -> dict[str, Any]:
    status = await client.call_tool("training_status", {"name": name, "wait_seconds": 60, "previews": 0})
    report = status.structured_content
    assert report is not None and report["state"] == "succeeded", status.content
    return report


async def _gates_say(client: Client, name: str) -> tuple[dict[str, Any], str]:
    """train_gates' answer, after checking the resource says the same."""
    gates = await client.call_tool("train_gates", {"name": name})
    assert not gates.is_error, gates.content
    resource = await client.read_resource(f"ategnatos://training/{name}")
    text = resource.contents[0].text  # type: ignore[union-attr]
    assert text.startswith(first_text(gates) + "\n"), (text[:600], first_text(gates))
    return gates.structured_content, first_text(gates)  # type: ignore[return-value]


async def _new_version_through_gate_4(client: Client, fake: FakeInstall, name: str, **plan: Any) -> dict[str, Any]:
    """train_plan with the trained run's name plans the next version; its gates 2-4 are passed for it."""
    planned = await client.call_tool("train_plan", {**PLAN, **plan})
    assert not planned.is_error, planned.content
    result = planned.structured_content
    assert result is not None and result["name"] == name, result
    assert result["config"]["name"] == name
    early = await client.call_tool("launch_training", {"name": name})
    assert early.is_error and "Gate 2 (confirmation)" in first_text(early), first_text(early)
    confirmed = await client.call_tool("train_confirm", {"name": name, "config_hash": result["config_hash"]})
    assert not confirmed.is_error, confirmed.content
    backend = plan.get("backend", "kohya")
    env_args = {"name": name} | ({"backend_dir": fake.backend_dirs[backend]} if backend in fake.backend_dirs else {})
    env = await client.call_tool("train_validate_environment", env_args)
    assert env.structured_content["passed"] is True, env.content  # type: ignore[index]
    dry = await client.call_tool("train_dry_run", {"name": name, "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    return result


async def test_a_finished_run_is_not_launched_again_and_a_new_version_trains_beside_it(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    fake = local_fake_install(app, tmp_path)
    await through_gate_4(client, home, fake, "kohya")
    assert not (await client.call_tool("launch_training", {"name": "ink"})).is_error
    await _finished(client, "ink")
    v1 = _run_files(home, "ink")
    assert "run/output/ink.safetensors" in v1 and "run/output/ink-000001.safetensors" in v1

    gates, text = await _gates_say(client, "ink")
    assert "training can be launched" not in text
    assert gates["training"]["state"] == "succeeded"
    assert "finished" in gates["next_step"] and "train_evaluate" in gates["next_step"]
    assert "'ink-v2'" in gates["next_step"] and "train_plan" in gates["next_step"]

    again = await client.call_tool("launch_training", {"name": "ink"})
    assert again.is_error and "already finished" in first_text(again), first_text(again)
    assert "train_evaluate" in first_text(again) and "'ink-v2'" in first_text(again)
    for args in ({"resume": True}, {"fresh": True}):
        refused = await client.call_tool("launch_training", {"name": "ink", **args})
        assert refused.is_error and "'ink-v2'" in first_text(refused), first_text(refused)
    for tool, args in (
        ("train_validate_environment", {"backend_dir": fake.backend_dirs["kohya"]}),
        ("train_dry_run", {"wait_seconds": 60}),
        ("train_confirm", {"config_hash": gates["confirmed_config_hash"]}),
    ):
        frozen = await client.call_tool(tool, {"name": "ink", **args})
        assert frozen.is_error and "already been trained" in first_text(frozen), (tool, first_text(frozen))
    assert _run_files(home, "ink") == v1

    plan = await _new_version_through_gate_4(client, fake, "ink-v2", overrides={"epochs": 4})
    assert plan["new_version_of"] == "ink"
    assert "new version" in plan["notices"][0] and "'ink'" in plan["notices"][0]
    assert plan["gates"]["dataset"]["status"] == "passed"  # the dataset is unchanged: gate 1 carries over
    assert plan["gates"]["confirmation"]["status"] == "open"  # the earlier yes does not
    launched = await client.call_tool("launch_training", {"name": "ink-v2"})
    assert not launched.is_error, launched.content
    report = await _finished(client, "ink-v2")
    output = home / "workspace" / "training" / "ink-v2" / "output"
    assert [Path(c["file"]) for c in report["checkpoints"]] == [
        *(output / f"ink-v2-{e:06d}.safetensors" for e in (1, 2, 3)),
        output / "ink-v2.safetensors",
    ]
    assert (home / "grimoire" / "training" / "ink-v2" / "progress.md").is_file()
    assert _run_files(home, "ink") == v1  # byte for byte: saves, logs, samples, plan files, records

    gates, _ = await _gates_say(client, "ink")
    assert gates["training"]["state"] == "succeeded" and "'ink-v2'" in gates["next_step"]
    third = await client.call_tool("train_plan", PLAN)
    assert third.structured_content["name"] == "ink-v3", third.content  # type: ignore[index]
    again = await client.call_tool("train_plan", {**PLAN, "name": "ink-v2"})
    assert again.structured_content["name"] == "ink-v3"  # type: ignore[index]  # revised, not a fourth


async def _held_before_the_last_step(client: Client, app: Wiring, fake: FakeInstall, go: Path) -> dict[str, Any]:
    """Launch with the trainer held before its last step (every kept epoch saved); its status then."""
    app.hosts.local_env = {**fake.env, "FAKE_WAIT_FILE": str(go)}
    launched = await client.call_tool("launch_training", {"name": "ink"})
    assert not launched.is_error, launched.content
    with anyio.fail_after(10):
        while True:
            status = (await client.call_tool("training_status", {"name": "ink", "previews": 0})).structured_content
            assert status is not None
            if status["status"]["total_steps"] and status["status"]["step"] == status["status"]["total_steps"] - 1:
                return status["status"]
            await anyio.sleep(0.05)


def _kept(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    """The files of ``before`` as they are now (missing or rewritten ones differ)."""
    return {name: after.get(name, "missing") for name in before}


async def test_a_failed_run_is_not_launched_again_a_new_version_trains_and_the_failed_one_still_resumes(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path)
    await through_gate_4(client, home, fake, "kohya")
    status = await _held_before_the_last_step(client, app, fake, go)
    os.kill(status["child_pid"], signal.SIGKILL)  # the trainer dies mid-run (host RAM, a driver fault, ...)
    with anyio.fail_after(10):
        while (report := (await client.call_tool("training_status", {"name": "ink"})).structured_content)[
            "state"
        ] != "failed":  # type: ignore[index]
            await anyio.sleep(0.05)
    saved_step = report["resume_from_step"]  # type: ignore[index]
    assert saved_step and "resume=true" in report["next_step"], report  # type: ignore[index]
    v1 = _run_files(home, "ink")
    assert "run/output/ink-000001.safetensors" in v1 and "run/output/ink.safetensors" not in v1

    gates, text = await _gates_say(client, "ink")
    assert gates["training"]["state"] == "failed" and "training can be launched" not in text
    assert f"launch_training(name='ink', resume=true) continues it from step {saved_step}" in gates["next_step"]
    assert "'ink-v2'" in gates["next_step"]
    for args in ({}, {"fresh": True}):
        refused = await client.call_tool("launch_training", {"name": "ink", **args})
        assert refused.is_error and "failed while training" in first_text(refused), first_text(refused)
        assert "from step 0 over its saves" in first_text(refused) and "resume=true" in first_text(refused)
    assert _run_files(home, "ink") == v1

    go.touch()
    app.hosts.local_env = fake.env
    await _new_version_through_gate_4(client, fake, "ink-v2")
    assert not (await client.call_tool("launch_training", {"name": "ink-v2"})).is_error
    await _finished(client, "ink-v2")
    assert _run_files(home, "ink") == v1

    resumed = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert not resumed.is_error, resumed.content
    assert resumed.structured_content["resumed_from_step"] == saved_step  # type: ignore[index]
    report = await _finished(client, "ink")
    assert report["status"]["step"] == report["status"]["total_steps"]
    after = _run_files(home, "ink")
    assert _kept({k: v for k, v in v1.items() if k.startswith("run/")}, after) == {
        k: v for k, v in v1.items() if k.startswith("run/")
    }  # every save, sample and log of the failed run, byte for byte; the resume added its own
    assert "run/output/ink.safetensors" in after
    gates, _ = await _gates_say(client, "ink")
    assert gates["training"]["state"] == "succeeded" and gates["training"]["resumes"] == 1


async def test_a_stopped_run_resumes_without_touching_its_saves_and_is_then_never_trained_again(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path)
    await through_gate_4(client, home, fake, "ai-toolkit")
    report = await held_then_stopped(client, app, fake, go)
    saved_step = report["resume_from_step"]
    assert saved_step, report
    v1 = _run_files(home, "ink")
    saves = [k for k in v1 if k.startswith("run/output/ink/ink_") and k.endswith(".safetensors")]
    assert saves, v1

    gates, text = await _gates_say(client, "ink")
    assert gates["training"]["state"] == "stopped" and "training can be launched" not in text
    assert f"continues it from step {saved_step}" in gates["next_step"] and "'ink-v2'" in gates["next_step"]
    for args in ({}, {"fresh": True}):
        refused = await client.call_tool("launch_training", {"name": "ink", **args})
        assert refused.is_error and "was stopped while training" in first_text(refused), first_text(refused)
    assert _run_files(home, "ink") == v1

    go.touch()
    resumed = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert not resumed.is_error, resumed.content
    assert resumed.structured_content["resumed_from_step"] == saved_step  # type: ignore[index]
    await _finished(client, "ink")
    after = _run_files(home, "ink")
    assert {k: after.get(k) for k in saves} == {k: v1[k] for k in saves}  # the saves before the stop, untouched
    again = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert again.is_error and "there is nothing to resume" in first_text(again)
    v1 = _run_files(home, "ink")

    app.hosts.local_env = fake.env
    await _new_version_through_gate_4(client, fake, "ink-v2", backend="ai-toolkit")
    assert not (await client.call_tool("launch_training", {"name": "ink-v2"})).is_error
    report = await _finished(client, "ink-v2")
    assert all("/ink-v2/output/" in c["file"] for c in report["checkpoints"]), report["checkpoints"]
    assert _run_files(home, "ink") == v1


async def test_two_launches_at_once_start_one_run_and_a_grimoire_from_before_run_records_still_refuses_a_relaunch(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    fake = local_fake_install(app, tmp_path)
    await through_gate_4(client, home, fake, "kohya")
    answers: list[Any] = []

    async def launch() -> None:
        answers.append(await client.call_tool("launch_training", {"name": "ink"}))

    async with anyio.create_task_group() as group:
        group.start_soon(launch)
        group.start_soon(launch)
    assert sorted(a.is_error for a in answers) == [False, True], [a.content for a in answers]
    refused = next(a for a in answers if a.is_error)
    assert "still going" in first_text(refused) or "already finished training" in first_text(refused), first_text(
        refused
    )
    await _finished(client, "ink")
    runs = home / "workspace" / "training" / "ink" / "runs"
    assert len([r for r in runs.iterdir() if r.name.startswith("training-")]) == 1

    # A grimoire written before runs were recorded in the gates: train_gates finds the run and says it finished.
    state = home / "grimoire" / ".state" / "training+ink.json"
    legacy = json.loads(state.read_text(encoding="utf-8"))
    del legacy["training_run"]
    state.write_text(json.dumps(legacy), encoding="utf-8")
    gates, text = await _gates_say(client, "ink")
    assert gates["training"]["state"] == "succeeded" and "training can be launched" not in text
    again = await client.call_tool("launch_training", {"name": "ink"})
    assert again.is_error and "already finished training" in first_text(again)
