"""The training-run tools through a real MCP client: gates 1-4 with the real tools, launch, status, evaluation.

Only the GPU is faked (tests/support/fake_install.py, the run's steps in tests/support/ink_run.py): the supervisor and the stand-in trainer run
as real detached processes on this machine, printing the real kohya log format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from ategnatos_mcp.training.execution import HostRegistry
from ategnatos_mcp.wiring import Wiring
from tests.support.fake_install import FakeInstall, make_fake_install
from tests.support.ink_run import (
    PLAN,
    first_text,
    gates_1_and_2,
    held_then_stopped,
    ink_dataset,
    local_fake_install,
    through_gate_3,
    through_gate_4,
)


@pytest.fixture
def install(app: Wiring, tmp_path: Path) -> FakeInstall:
    fake = make_fake_install(tmp_path / "install")

    async def no_ssh():  # type: ignore[no-untyped-def]
        raise AssertionError("these tests run on the local host only")

    app.hosts = HostRegistry(app.settings.workspace_dir / "training", no_ssh, local_env=fake.env)
    return fake


async def test_full_path_gates_then_launch_status_and_evaluation(
    client: Client, home: Path, install: FakeInstall
) -> None:
    folder, config_hash = await gates_1_and_2(client, home)

    early = await client.call_tool("launch_training", {"name": "ink"})
    assert early.is_error
    assert "Gate 3 (environment)" in first_text(early) and "Gate 4 (dry run)" in first_text(early)
    assert "Gate 1" not in first_text(early) and "Gate 2" not in first_text(early)

    env = await client.call_tool(
        "train_validate_environment", {"name": "ink", "backend_dir": install.backend_dirs["kohya"]}
    )
    assert not env.is_error, env.content
    check = env.structured_content
    assert check is not None and check["passed"] is True, check
    assert check["facts"]["gpu"].startswith("NVIDIA GeForce RTX 4090")
    assert (home / "grimoire" / "training" / "ink" / "environment.md").is_file()

    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert not dry.is_error, dry.content
    result = dry.structured_content
    assert result is not None and result["passed"] is True, result
    assert result["progress"]["step"] == result["progress"]["total_steps"] == 3
    assert [c["kind"] for c in result["progress"]["checkpoints"]] == ["final"]
    assert result["gates"]["dry_run"]["status"] == "passed"
    assert result["gates"]["dry_run"]["config_hash"] == config_hash

    launched = await client.call_tool("launch_training", {"name": "ink"})
    assert not launched.is_error, launched.content
    assert "training_status" in first_text(launched)

    status = await client.call_tool(
        "training_status", {"name": "ink", "wait_seconds": 60, "log_lines": 5, "previews": 3}
    )
    assert not status.is_error, status.content
    report = status.structured_content
    assert report is not None and report["state"] == "succeeded", report
    epochs = report["status"]["total_epochs"]
    samples = report["samples"]
    assert samples["total"] == samples["new"] == epochs * 2  # two prompts after every epoch
    newest = samples["samples"][0]
    assert newest["epoch"] == epochs and newest["step"] == report["status"]["total_steps"]
    assert newest["prompt"] == "ink_style, a cat" and Path(newest["local_path"]).is_file()
    images = [c for c in status.content if c.type == "image"]
    assert len(images) == 3 and all(c.mime_type == "image/jpeg" for c in images)  # type: ignore[union-attr]
    assert f"Sample images: {epochs * 2} ({epochs * 2} new)" in first_text(status)
    seen = await client.call_tool("training_status", {"name": "ink"})
    assert seen.structured_content["samples"]["new"] == 0  # type: ignore[index]
    assert not [c for c in seen.content if c.type == "image"]
    assert [c["epoch"] for c in report["checkpoints"] if c["kind"] == "epoch"] == list(range(1, epochs))
    assert report["checkpoints"][-1]["kind"] == "final"
    assert all(Path(c["file"]).is_file() for c in report["checkpoints"])
    assert "model saved." in report["log_tail"]
    progress_md = (home / "grimoire" / "training" / "ink" / "progress.md").read_text(encoding="utf-8")
    assert "State: succeeded" in progress_md and "ink-000001.safetensors" in progress_md

    no_comfyui = await client.call_tool("train_evaluate", {"name": "ink"})  # the sheet is drawn by ComfyUI
    assert no_comfyui.is_error and "No ComfyUI is answering (http://127.0.0.1:9)" in first_text(no_comfyui)
    assert "remote_deploy target='comfyui'" in first_text(no_comfyui)

    (folder / "ink03.txt").write_text("ink_style, study three, revised", encoding="utf-8")
    gates = await client.call_tool("train_gates", {"name": "ink"})
    assert gates.structured_content["gates"][0]["status"] == "passed"  # type: ignore[index]  # kept as trained
    assert "The dataset has changed since 'ink' was checked and trained" in first_text(gates)
    again = await client.call_tool("launch_training", {"name": "ink"})
    assert again.is_error and "already finished training" in first_text(again)


async def test_launch_is_refused_on_another_host_than_the_gates_checked(
    client: Client, home: Path, install: FakeInstall
) -> None:
    await gates_1_and_2(client, home)
    refused = await client.call_tool("launch_training", {"name": "ink", "host": "root@10.0.0.9:2222"})
    assert refused.is_error
    assert "Gate 3 (environment): the environment on 10.0.0.9:2222 has not passed" in first_text(refused)
    replanned = await client.call_tool("train_plan", {**PLAN, "overrides": {"network_rank": 8, "network_alpha": 8}})
    assert not replanned.is_error, replanned.content
    stale = await client.call_tool("launch_training", {"name": "ink"})
    assert stale.is_error and "Gate 2 (confirmation): the user has not confirmed" in first_text(stale)


async def test_environment_problems_come_back_in_plain_words(client: Client, home: Path, tmp_path: Path) -> None:
    await gates_1_and_2(client, home)
    result = await client.call_tool(
        "train_validate_environment", {"name": "ink", "backend_dir": str(tmp_path / "nowhere")}
    )
    assert not result.is_error, result.content
    check = result.structured_content
    assert check is not None and check["passed"] is False
    problems = " ".join(check["problems"])
    assert "trainer is not installed" in problems
    assert check["gates"]["environment"]["status"] == "failed"
    dry = await client.call_tool("train_dry_run", {"name": "ink"})
    assert dry.is_error and "gate 3" in first_text(dry)


async def test_status_of_a_run_never_started_says_how_to_start_it(client: Client, home: Path) -> None:
    await gates_1_and_2(client, home)
    result = await client.call_tool("training_status", {"name": "ink"})
    assert result.is_error and "launch_training" in first_text(result)
    tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("train_validate_environment", "train_dry_run", "launch_training", "training_status", "train_evaluate"):
        assert tools[name].output_schema is not None


async def test_a_dry_run_that_only_fits_a_smaller_batch_fails_with_the_batch_that_fit(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    fake = local_fake_install(app, tmp_path, FAKE_OOM_ABOVE="1")
    await through_gate_3(client, home, fake)
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert not dry.is_error, dry.content
    result = dry.structured_content
    assert result is not None and result["passed"] is False and result["state"] == "failed"
    assert "only fit at batch size 1" in result["problems"][0]
    assert "'batch_size': 1" in result["problems"][0]
    assert result["gates"]["dry_run"]["status"] == "failed"
    refused = await client.call_tool("launch_training", {"name": "ink"})
    assert (
        refused.is_error
        and "Gate 4 (dry run): no passing dry run yet; call train_dry_run(name='ink', host='local')."
        in first_text(refused)
    )


async def test_a_dry_run_takes_three_steps_and_one_save_unless_told_two_to_five(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    fake = local_fake_install(app, tmp_path)
    await through_gate_3(client, home, fake)
    for steps in (1, 6, 10, 0, -3):
        refused = await client.call_tool("train_dry_run", {"name": "ink", "steps": steps, "wait_seconds": 60})
        assert refused.is_error, refused.content
        assert f"A dry run takes 2 to 5 training steps; {steps} was asked for" in first_text(refused)
        assert "steps between 2 and 5" in first_text(refused)
    assert not (home / "workspace" / "training" / "ink" / "runs").exists()  # nothing started for a refusal

    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    result = dry.structured_content
    assert result is not None and result["passed"] is True, dry.content
    assert result["progress"]["step"] == result["progress"]["total_steps"] == 3
    assert [c["kind"] for c in result["progress"]["checkpoints"]] == ["final"]  # one save
    args = (home / "workspace" / "configs" / "ink" / "dryrun-ink.toml").read_text(encoding="utf-8")
    assert "max_train_steps = 3\n" in args  # the plan's dry-run file says the same

    five = await client.call_tool("train_dry_run", {"name": "ink", "steps": 5, "wait_seconds": 60})
    assert five.structured_content["passed"] is True, five.content  # type: ignore[index]
    assert five.structured_content["progress"]["total_steps"] == 5  # type: ignore[index]


async def test_a_running_dry_run_is_reattached_not_started_twice(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path, FAKE_WAIT_FILE=str(go))
    await through_gate_3(client, home, fake)
    first = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 0})
    assert first.structured_content["state"] == "running", first.content  # type: ignore[index]
    assert "Call train_dry_run again" in first_text(first)
    go.touch()
    watched = await client.call_tool("training_status", {"name": "ink", "run": "dry_run", "wait_seconds": 60})
    assert watched.structured_content["state"] == "succeeded", watched.content  # type: ignore[index]
    assert "train_dry_run" in watched.structured_content["next_step"]  # type: ignore[index]
    second = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    result = second.structured_content
    assert result is not None and result["passed"] is True, result
    runs = list((home / "workspace" / "training" / "ink" / "runs").iterdir())
    assert [r.name.split("-")[0] for r in runs] == ["dry_run"]  # one run folder: the second call re-attached


async def test_training_status_only_reads_and_launch_training_stops_the_run(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path)
    await through_gate_3(client, home, fake)
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    app.hosts.local_env = {**fake.env, "FAKE_WAIT_FILE": str(go)}
    launched = await client.call_tool("launch_training", {"name": "ink"})
    assert not launched.is_error, launched.content
    again = await client.call_tool("launch_training", {"name": "ink"})
    assert again.is_error and "still going" in first_text(again)
    with anyio.fail_after(10):  # until the trainer is held at its last step
        while (await client.call_tool("training_status", {"name": "ink"})).structured_content["status"]["step"] < 1:  # type: ignore[index]
            await anyio.sleep(0.05)
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    held = await client.call_tool(
        "training_status", {"name": "ink", "wait_seconds": 0.5}, progress_callback=on_progress
    )
    assert held.structured_content["state"] == "running", held.content  # type: ignore[index]
    assert seen and seen[-1][1] == held.structured_content["status"]["total_steps"]  # type: ignore[index]
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert "stop" not in tools["training_status"].input_schema["properties"]
    asked = await client.call_tool("training_status", {"name": "ink", "stop": True})  # an old habit: ignored
    assert asked.structured_content["state"] == "running", asked.content  # type: ignore[index]
    still = await client.call_tool("training_status", {"name": "ink"})
    assert still.structured_content["state"] == "running"  # type: ignore[index]  # reading never stops it
    both = await client.call_tool("launch_training", {"name": "ink", "action": "stop", "resume": True})
    assert both.is_error and "choose one" in first_text(both)

    stopped = await client.call_tool("launch_training", {"name": "ink", "action": "stop"})
    assert not stopped.is_error, stopped.content
    answer = stopped.structured_content
    assert answer is not None and answer["action"] == "stop" and answer["status"]["state"] == "stopped"
    assert answer["handle"]["run_dir"] == launched.structured_content["handle"]["run_dir"]  # type: ignore[index]
    assert f"Training of 'ink' on local stopped at step {answer['status']['step']}" in first_text(stopped)
    assert "resume=true" in answer["next_step"]
    progress_md = (home / "grimoire" / "training" / "ink" / "progress.md").read_text(encoding="utf-8")
    assert "State: stopped" in progress_md
    again = await client.call_tool("launch_training", {"name": "ink", "action": "stop"})
    assert not again.is_error and "had already ended (stopped); nothing was stopped" in first_text(again)


async def test_an_interrupted_kohya_run_resumes_from_its_saved_state_and_finishes(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path)
    await through_gate_3(client, home, fake)
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    nothing = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert nothing.is_error and "no earlier training run of 'ink' to resume" in first_text(nothing)

    report = await held_then_stopped(client, app, fake, go)
    total, epochs = report["status"]["total_steps"], report["status"]["total_epochs"]
    saved_step = total // epochs * (epochs - 1)  # the state saved with the last kept epoch
    assert report["resume_from_step"] == saved_step, report
    assert f"Resumable from step {saved_step}" in report["resume"] and "--resume" in report["resume"]
    output = home / "workspace" / "training" / "ink" / "output"
    state = output / f"ink-{epochs - 1:06d}-state"
    assert [p.name for p in output.glob("*-state")] == [state.name]  # save_last_n_epochs_state = 1

    state.rename(tmp_path / "moved-state")  # without the state, sd-scripts could only start again at step 0
    lost = await client.call_tool("training_status", {"name": "ink"})
    assert lost.structured_content["resume_from_step"] is None  # type: ignore[index]
    assert "begins at step 0" in lost.structured_content["resume"]  # type: ignore[index]
    refused = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert (
        refused.is_error
        and "nothing to continue from" in first_text(refused)
        and "without resume" in first_text(refused)
    )
    (tmp_path / "moved-state").rename(state)

    go.touch()
    resumed = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert not resumed.is_error, resumed.content
    assert f"resumed from step {saved_step}" in first_text(resumed)
    assert resumed.structured_content["resumed_from_step"] == saved_step  # type: ignore[index]
    run_dir = Path(resumed.structured_content["handle"]["run_dir"])  # type: ignore[index]
    command = json.loads((run_dir / "spec.json").read_text())["command"]
    assert command[-2:] == [f"--config_file={run_dir}/config/ink.toml", f"--resume={state}"]  # the resume form
    finished = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "log_lines": 200})
    result = finished.structured_content
    assert result is not None and result["state"] == "succeeded", result
    assert result["status"]["step"] == total and result["resumed_from_step"] == saved_step
    frames = [line for line in result["log_tail"].splitlines() if line.startswith("steps:") and "avr_loss" in line]
    assert frames and frames[0].split("|")[2].split()[0] == f"{saved_step + 1}/{total}"  # no step 1 again
    assert f"epoch {epochs}/{epochs}" in result["log_tail"] and "epoch 1/" not in result["log_tail"]
    progress_md = (home / "grimoire" / "training" / "ink" / "progress.md").read_text(encoding="utf-8")
    assert f"Resumed from step {saved_step}" in progress_md
    again = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert again.is_error and "there is nothing to resume" in first_text(again)


async def test_replanning_a_stopped_run_plans_a_new_version_and_the_stopped_run_resumes_as_it_was(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path)
    await through_gate_3(client, home, fake)
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    first_hash = dry.structured_content["gates"]["dry_run"]["config_hash"]  # type: ignore[index]
    report = await held_then_stopped(client, app, fake, go)
    replanned = await client.call_tool("train_plan", {**PLAN, "overrides": {"network_rank": 8, "network_alpha": 8}})
    assert not replanned.is_error, replanned.content
    plan = replanned.structured_content
    assert plan is not None and plan["name"] == "ink-v2" and plan["new_version_of"] == "ink"
    assert plan["config"]["network_rank"] == 8 and plan["config_hash"] != first_hash
    gates = await client.call_tool("train_gates", {"name": "ink"})
    assert gates.structured_content["planned_config_hash"] == first_hash  # type: ignore[index]  # untouched
    assert "'ink-v2', is planned" in gates.structured_content["next_step"]  # type: ignore[index]
    nothing = await client.call_tool("launch_training", {"name": "ink-v2", "resume": True})
    assert nothing.is_error and "Gate 2 (confirmation)" in first_text(nothing)

    go.touch()
    resumed = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert not resumed.is_error, resumed.content
    assert resumed.structured_content["resumed_from_step"] == report["resume_from_step"]  # type: ignore[index]
    handle = resumed.structured_content["handle"]  # type: ignore[index]
    assert handle["config_hash"] == first_hash  # the stopped run's own settings, not the new version's
    assert "network_dim = 8\n" not in (Path(handle["run_dir"]) / "config" / "ink.toml").read_text()


@pytest.mark.parametrize("backend", ["simpletuner", "ai-toolkit"])
async def test_simpletuner_and_ai_toolkit_resume_from_their_newest_save(
    client: Client, app: Wiring, home: Path, tmp_path: Path, backend: str
) -> None:
    """They continue from their newest save by themselves; a plain relaunch (which would do the same while claiming
    a start) is refused and names the resume."""
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path)
    ink_dataset(home)
    audit = await client.call_tool(
        "dataset_audit", {"path": "workspace/datasets/ink", "training_name": "ink", "trigger_word": "ink_style"}
    )
    assert audit.structured_content["go"] is True, audit.content  # type: ignore[index]
    plan = await client.call_tool("train_plan", {**PLAN, "backend": backend})
    assert not plan.is_error, plan.content
    config_hash = plan.structured_content["config_hash"]  # type: ignore[index]
    assert not (await client.call_tool("train_confirm", {"name": "ink", "config_hash": config_hash})).is_error
    env_args = {"name": "ink"} | ({"backend_dir": fake.backend_dirs[backend]} if backend in fake.backend_dirs else {})
    env = await client.call_tool("train_validate_environment", env_args)
    assert env.structured_content["passed"] is True, env.content  # type: ignore[index]
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]

    report = await held_then_stopped(client, app, fake, go)
    saved_step = report["resume_from_step"]
    assert saved_step and 0 < saved_step < report["status"]["total_steps"], report
    assert f"Resumable from step {saved_step}" in report["resume"]
    plain = await client.call_tool("launch_training", {"name": "ink"})
    assert plain.is_error and "was stopped" in first_text(plain), first_text(plain)
    assert f"launch_training(name='ink', resume=true) continues it from step {saved_step}" in first_text(plain)
    go.touch()
    resumed = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert not resumed.is_error, resumed.content
    assert resumed.structured_content["handle"]["resumed_from_step"] == saved_step  # type: ignore[index]
    assert f"resumed from step {saved_step}" in first_text(resumed)
    run_dir = Path(resumed.structured_content["handle"]["run_dir"])  # type: ignore[index]
    assert not any(a.startswith("--resume") for a in json.loads((run_dir / "spec.json").read_text())["command"])
    finished = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "log_lines": 200})
    result = finished.structured_content
    assert result is not None and result["state"] == "succeeded", result
    assert result["status"]["step"] == result["status"]["total_steps"]
    if backend == "simpletuner":  # its real resume lines
        assert f"Resuming from global_step {saved_step}." in result["log_tail"]
    first = next(line for line in result["log_tail"].splitlines() if "%|" in line and "loss" in line)
    assert first.split("|")[2].split()[0] == f"{saved_step + 1}/{result['status']['total_steps']}"


async def test_a_resume_continues_at_the_batch_the_out_of_memory_ladder_reached(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path)
    await through_gate_4(client, home, fake, "kohya")
    fake.env["FAKE_OOM_ABOVE"] = "1"  # the long run needs more memory than the dry run did
    report = await held_then_stopped(client, app, fake, go)
    planned = report["status"]["attempts"][0]["batch_size"]
    effective = planned * report["status"]["attempts"][0]["gradient_accumulation"]
    assert planned > 1 and report["status"]["batch_size"] == 1, report["status"]
    assert report["status"]["gradient_accumulation"] == effective
    saved_step = report["resume_from_step"]
    assert saved_step, report

    go.touch()
    resumed = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert not resumed.is_error, resumed.content
    answer = resumed.structured_content
    assert answer is not None and answer["resumed_from_step"] == saved_step
    assert (answer["batch_size"], answer["gradient_accumulation"]) == (1, effective)
    assert f"only fit at batch size 1 with gradient accumulation {effective}" in first_text(resumed)
    run_dir = Path(answer["handle"]["run_dir"])
    assert f"gradient_accumulation_steps = {effective}" in (run_dir / "config" / "ink.toml").read_text()
    assert "batch_size = 1" in (run_dir / "config" / "ink-dataset.toml").read_text()  # the run's own copy
    planned_toml = home / "workspace" / "configs" / "ink"
    assert all(f"batch_size = {planned}" in p.read_text() for p in planned_toml.rglob("ink-dataset.toml"))
    finished = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60})
    result = finished.structured_content
    assert result is not None and result["state"] == "succeeded", result
    assert [a["batch_size"] for a in result["status"]["attempts"]] == [1]  # no second trip down the ladder
    assert result["status"]["step"] == result["status"]["total_steps"]


# Files in the output folder that no recorded run of this name made (an earlier training copied there by hand, or a
# grimoire started afresh beside an old workspace), named as each backend names its saves.
_LEFTOVERS = {
    "kohya": ["ink-000001.safetensors", "ink.safetensors"],
    "simpletuner": ["checkpoint-20/pytorch_lora_weights.safetensors", "pytorch_lora_weights.safetensors"],
    "ai-toolkit": ["ink/ink_000000020.safetensors"],
}


@pytest.mark.parametrize("backend", ["kohya", "simpletuner", "ai-toolkit"])
async def test_files_no_run_made_are_never_written_over_and_fresh_moves_them_aside(
    client: Client, app: Wiring, home: Path, tmp_path: Path, backend: str
) -> None:
    fake = local_fake_install(app, tmp_path)
    await through_gate_4(client, home, fake, backend)
    output = home / "workspace" / "training" / "ink" / "output"
    for number, name in enumerate(_LEFTOVERS[backend]):
        (output / name).parent.mkdir(parents=True, exist_ok=True)
        (output / name).write_bytes(f"the artist's earlier file {number}".encode())
    before = {
        p.relative_to(output): p.read_bytes() for p in output.rglob("*") if p.is_file() and "dryrun" not in p.parts
    }

    refused = await client.call_tool("launch_training", {"name": "ink"})
    assert refused.is_error and "already holds files no recorded run of it made" in first_text(refused), first_text(
        refused
    )
    assert "fresh=true" in first_text(refused)
    both = await client.call_tool("launch_training", {"name": "ink", "resume": True, "fresh": True})
    assert both.is_error and "choose one" in first_text(both)
    fresh = await client.call_tool("launch_training", {"name": "ink", "fresh": True})
    assert not fresh.is_error, fresh.content
    assert fresh.structured_content["resumed_from_step"] is None  # type: ignore[index]
    aside = Path(first_text(fresh).split("moved (not deleted) to ")[1].split(".\n")[0].rstrip("."))
    assert aside.parent == output.parent / "earlier-saves"
    assert {p.relative_to(aside): p.read_bytes() for p in aside.rglob("*") if p.is_file()} == before
    assert (output / "dryrun").is_dir()
    finished = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60})
    result = finished.structured_content
    assert result is not None and result["state"] == "succeeded", result
    log = (Path(fresh.structured_content["handle"]["run_dir"]) / "train.log").read_text()  # type: ignore[index]
    first = next(line for line in log.replace("\r", "\n").splitlines() if "%|" in line and "loss" in line)
    assert first.split("|")[2].split()[0] == f"1/{result['status']['total_steps']}"  # from the beginning
    assert "Resuming from" not in log
    assert {p.relative_to(aside): p.read_bytes() for p in aside.rglob("*") if p.is_file()} == before


async def test_a_kohya_run_with_regularisation_images_runs_the_doubled_steps_the_plan_announced(
    client: Client, home: Path, install: FakeInstall
) -> None:
    ink_dataset(home)
    reg = home / "workspace" / "datasets" / "reg"
    reg.mkdir()
    for source in sorted((home / "workspace" / "datasets" / "ink").glob("*.png"))[:4]:
        (reg / source.name.replace("ink", "person")).write_bytes(source.read_bytes())
        (reg / source.with_suffix(".txt").name.replace("ink", "person")).write_text("a person", encoding="utf-8")
    laid = await client.call_tool(
        "dataset_structure",
        {
            "path": "ink",
            "name": "ink",
            "repeats": 4,
            "extra_concepts": [{"path": "workspace/datasets/reg", "name": "reg", "repeats": 1}],
        },
    )
    assert not laid.is_error, laid.content
    kohya_dir = "workspace/datasets/ink-kohya"
    audit = await client.call_tool(
        "dataset_audit", {"path": kohya_dir, "training_name": "ink", "trigger_word": "ink_style"}
    )
    assert audit.structured_content["go"] is True, audit.content  # type: ignore[index]
    planned = await client.call_tool("train_plan", {**PLAN, "dataset_path": kohya_dir, "overrides": {"batch_size": 2}})
    assert not planned.is_error, planned.content
    plan = planned.structured_content
    assert plan is not None and plan["steps"]["steps_per_epoch"] == 20  # 10 images x 4 repeats / batch 2
    assert plan["steps"]["regularisation_images"] == 4 and "about twice" in plan["steps"]["per_backend"]["kohya"]
    assert not (await client.call_tool("train_confirm", {"name": "ink", "config_hash": plan["config_hash"]})).is_error
    env = await client.call_tool(
        "train_validate_environment", {"name": "ink", "backend_dir": install.backend_dirs["kohya"]}
    )
    assert env.structured_content["passed"] is True, env.content  # type: ignore[index]
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    assert not (await client.call_tool("launch_training", {"name": "ink"})).is_error

    status = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "previews": 0})
    report = status.structured_content
    assert report is not None and report["state"] == "succeeded", status.content
    epochs = plan["config"]["epochs"]
    assert report["status"]["total_steps"] == epochs * 2 * 20  # sd-scripts pairs each view with a reg image
    saved = [c["epoch"] for c in report["checkpoints"] if c["kind"] == "epoch"]
    assert saved == list(range(1, epochs))  # epochs named right although each holds twice the planned steps


async def _held_before_the_last_step(client: Client, app: Wiring, fake: FakeInstall, go: Path) -> dict[str, Any]:
    """Launch with the trainer held before its last step; the status once it got there."""
    app.hosts.local_env = {**fake.env, "FAKE_WAIT_FILE": str(go)}
    launched = await client.call_tool("launch_training", {"name": "ink"})
    assert not launched.is_error, launched.content
    with anyio.fail_after(10):
        while True:
            report = (await client.call_tool("training_status", {"name": "ink", "previews": 0})).structured_content
            assert report is not None
            status = report["status"]
            if status["total_steps"] and status["step"] == status["total_steps"] - 1:
                return report
            await anyio.sleep(0.05)


async def test_training_status_says_how_long_the_run_still_needs(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path)
    await through_gate_4(client, home, fake, "kohya")
    fake.env["FAKE_SECONDS_PER_STEP"] = "1500"  # a slow card: its bar says 25:00 left at the last step
    await _held_before_the_last_step(client, app, fake, go)
    status = await client.call_tool("training_status", {"name": "ink", "previews": 0})
    report = status.structured_content
    assert report is not None and report["state"] == "running", status.content
    assert report["progress"]["eta_seconds"] == 1500 and report["progress"]["seconds_per_step"] == 1500
    assert report["time_left"] == {"seconds": 1500, "words": "about 25 minutes", "basis": "trainer"}
    assert "Time left: about 25 minutes (from the trainer's own estimate)." in first_text(status)
    assert report["next_step"].startswith("Still running, about 25 minutes left")
    assert report["cost"] is None and report["stall"] is None  # this computer costs nothing; the log is fresh
    progress_md = (home / "grimoire" / "training" / "ink" / "progress.md").read_text(encoding="utf-8")
    assert "- Time left: about 25 minutes" in progress_md
    go.touch()
    done = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "previews": 0})
    assert done.structured_content["state"] == "succeeded", done.content  # type: ignore[index]
    assert done.structured_content["time_left"] is None and "Time left" not in first_text(done)  # type: ignore[index]


async def test_a_run_whose_log_stops_moving_is_named_with_what_to_do(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path)
    await through_gate_4(client, home, fake, "kohya")
    app.settings.training.stall_minutes = 0.02  # 1.2 s instead of 15 minutes, so the test need not wait
    await _held_before_the_last_step(client, app, fake, go)  # silent from here on, as a hung trainer is
    with anyio.fail_after(15):
        while (
            report := (await client.call_tool("training_status", {"name": "ink", "previews": 0}))
        ).structured_content[  # type: ignore[index]
            "stall"
        ] is None:
            await anyio.sleep(0.2)
    stall = report.structured_content["stall"]  # type: ignore[index]
    assert stall["kind"] == "silent" and stall["step"] == report.structured_content["status"]["step"]  # type: ignore[index]
    assert stall["warning"].startswith("No progress for ") and "printed nothing since step" in stall["warning"]
    assert "launch_training(name='ink', action='stop')" in stall["warning"]
    assert "launch_training(name='ink', resume=true)" in stall["warning"]
    assert f"Warning: {stall['warning']}" in first_text(report)
    progress_md = (home / "grimoire" / "training" / "ink" / "progress.md").read_text(encoding="utf-8")
    assert "- Warning: No progress for" in progress_md
    go.touch()
    done = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "previews": 0})
    assert done.structured_content["state"] == "succeeded", done.content  # type: ignore[index]
    assert done.structured_content["stall"] is None  # type: ignore[index]


# The stand-in card fits only once gradient checkpointing is on, named as each backend's own config names it.
_FITS_WITH_CHECKPOINTING = {
    "kohya": "gradient_checkpointing=true",
    "simpletuner": "gradient_checkpointing=true",
    "ai-toolkit": "gradient_checkpointing=true",
}


@pytest.mark.parametrize("backend", ["kohya", "simpletuner", "ai-toolkit"])
async def test_out_of_memory_at_batch_1_goes_on_with_the_trainers_memory_savers_named_in_plain_words(
    client: Client, app: Wiring, home: Path, tmp_path: Path, backend: str
) -> None:
    fake = local_fake_install(app, tmp_path)
    overrides = {"gradient_checkpointing": False, "batch_size": 2}
    await through_gate_4(client, home, fake, backend, overrides=overrides)
    go = tmp_path / "go"
    knobs = {"FAKE_OOM_UNLESS": _FITS_WITH_CHECKPOINTING[backend], "FAKE_WAIT_FILE": str(go)}
    app.hosts.local_env = {**fake.env, **knobs}  # the long run needs more memory
    launched = await client.call_tool("launch_training", {"name": "ink"})
    assert not launched.is_error, launched.content
    with anyio.fail_after(20):  # until it runs again after the ladder
        while (
            report := (await client.call_tool("training_status", {"name": "ink", "previews": 0}))
        ).structured_content[  # type: ignore[index]
            "status"
        ]["step"] < 1 or not report.structured_content["status"]["savers"]:  # type: ignore[index]
            await anyio.sleep(0.05)
    status = report.structured_content["status"]  # type: ignore[index]
    assert status["message"] == (
        "Ran out of graphics memory at batch size 1; now trying with gradient checkpointing, which saves memory at "
        "about 20 % more time (values are recomputed instead of kept)."
    )
    assert "Memory savers switched on after running out of memory: gradient checkpointing." in first_text(report)
    go.touch()
    done = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "previews": 0})
    final = done.structured_content
    assert final is not None and final["state"] == "succeeded", done.content
    attempts = [(a["batch_size"], a["gradient_accumulation"], a["savers"]) for a in final["status"]["attempts"]]
    assert attempts == [(2, 1, []), (1, 2, []), (1, 2, ["gradient checkpointing"])]
    progress_md = (home / "grimoire" / "training" / "ink" / "progress.md").read_text(encoding="utf-8")
    assert "- Memory savers switched on after running out of memory: gradient checkpointing" in progress_md


async def test_when_nothing_fits_the_run_stops_and_only_proposes_a_lower_resolution(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    fake = local_fake_install(app, tmp_path)
    await through_gate_4(client, home, fake, "kohya", overrides={"batch_size": 2})
    app.hosts.local_env = {**fake.env, "FAKE_OOM_ABOVE": "0"}  # the long run does not fit at all
    launched = await client.call_tool("launch_training", {"name": "ink"})
    assert not launched.is_error, launched.content
    done = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "previews": 0})
    report = done.structured_content
    assert report is not None and report["state"] == "failed", done.content
    status = report["status"]
    assert status["memory_exhausted"] is True
    assert [(a["batch_size"], a["savers"]) for a in status["attempts"]] == [
        (2, []), (1, []), (1, ["the base model loaded in 8 bits"]),
    ]  # fmt: skip
    assert status["message"] == (
        "Out of graphics memory even at batch size 1, with every memory saver this trainer offers switched on "
        "(the base model loaded in 8 bits)."
    )
    step = report["next_step"]
    assert step.startswith("What is left is training at a lower resolution, 768 px instead of 1024 px.")
    assert "not done without the artist's yes" in step and "(it plans the next version, 'ink-v2')" in step
    assert "overrides={'batch_size': 2, 'resolution': 768})" in step and "train_plan(name='ink'" in step
    assert step.endswith("then confirm it. Or train on a GPU with more memory (gpu_offers shows which fit).")
    assert "gpu_offers" in step and "resume=true" not in step  # resuming would only run out of memory again
    run_config = Path(launched.structured_content["handle"]["run_dir"]) / "config"  # type: ignore[index]
    assert all("resolution = 1024" in p.read_text() for p in run_config.glob("*-dataset.toml"))  # never lowered


async def test_a_dry_run_that_fits_only_with_a_memory_saver_names_the_plan_that_fits(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    fake = local_fake_install(app, tmp_path, FAKE_OOM_UNLESS="gradient_checkpointing=true")
    ink_dataset(home)
    audit = await client.call_tool(
        "dataset_audit", {"path": "workspace/datasets/ink", "training_name": "ink", "trigger_word": "ink_style"}
    )
    assert audit.structured_content["go"] is True, audit.content  # type: ignore[index]
    plan_args = {**PLAN, "overrides": {"gradient_checkpointing": False, "batch_size": 2}}
    planned = await client.call_tool("train_plan", plan_args)
    config_hash = planned.structured_content["config_hash"]  # type: ignore[index]
    assert not (await client.call_tool("train_confirm", {"name": "ink", "config_hash": config_hash})).is_error
    env_args = {"name": "ink", "backend_dir": fake.backend_dirs["kohya"]}
    assert (await client.call_tool("train_validate_environment", env_args)).structured_content["passed"] is True  # type: ignore[index]
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    result = dry.structured_content
    assert result is not None and result["passed"] is False, dry.content
    problem = result["problems"][0]
    assert (
        "only fit at batch size 1 with gradient accumulation 2 and with gradient checkpointing switched on" in problem
    )
    call = problem.split("confirm again: ")[1].rstrip(".")
    assert call.startswith("train_plan(name='ink', ") and "'gradient_checkpointing': True" in call
    assert "'batch_size': 1, 'gradient_accumulation': 2" in call

    replanned = await client.call_tool(
        "train_plan", eval("dict" + call.removeprefix("train_plan"))
    )  # the call as given
    assert not replanned.is_error, replanned.content
    fitted = replanned.structured_content["config"]  # type: ignore[index]
    assert (fitted["gradient_checkpointing"], fitted["batch_size"], fitted["gradient_accumulation"]) == (True, 1, 2)
    new_hash = replanned.structured_content["config_hash"]  # type: ignore[index]
    assert not (await client.call_tool("train_confirm", {"name": "ink", "config_hash": new_hash})).is_error
    assert (await client.call_tool("train_validate_environment", env_args)).structured_content["passed"] is True  # type: ignore[index]
    again = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert again.structured_content["passed"] is True, again.content  # type: ignore[index]


async def test_a_resume_keeps_the_memory_savers_the_ladder_switched_on(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = local_fake_install(app, tmp_path)
    await through_gate_4(client, home, fake, "kohya", overrides={"gradient_checkpointing": False, "batch_size": 2})
    fake.env["FAKE_OOM_UNLESS"] = "gradient_checkpointing=true"  # the long run needs more memory than the dry run
    report = await held_then_stopped(client, app, fake, go)
    assert report["status"]["savers"] == ["gradient checkpointing"] and report["resume_from_step"], report

    go.touch()
    resumed = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert not resumed.is_error, resumed.content
    assert "only fit with gradient checkpointing switched on by the out-of-memory ladder" in first_text(resumed)
    answer = resumed.structured_content
    assert answer is not None and answer["handle"]["memory_savers"] == ["gradient checkpointing"]
    assert "gradient_checkpointing = true" in (Path(answer["handle"]["run_dir"]) / "config" / "ink.toml").read_text()
    finished = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "previews": 0})
    result = finished.structured_content
    assert result is not None and result["state"] == "succeeded", result
    attempts = [(a["batch_size"], a["savers"]) for a in result["status"]["attempts"]]
    assert attempts == [(1, ["gradient checkpointing"])]  # no second trip down the ladder


async def test_stop_ends_a_running_dry_run_when_no_training_run_was_started(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    fake = local_fake_install(app, tmp_path, FAKE_WAIT_FILE=str(tmp_path / "never"))
    await through_gate_3(client, home, fake)
    nothing = await client.call_tool("launch_training", {"name": "ink", "action": "stop"})
    assert nothing.is_error and "Nothing of 'ink' was started" in first_text(nothing)
    first = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 0})
    assert first.structured_content["state"] == "running", first.content  # type: ignore[index]
    stopped = await client.call_tool("launch_training", {"name": "ink", "action": "stop"})
    answer = stopped.structured_content
    assert answer is not None and answer["kind"] == "dry_run" and answer["status"]["state"] == "stopped", (
        stopped.content
    )
    assert first_text(stopped).startswith("Dry run of 'ink' on local stopped at step")
    judged = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 10})
    assert judged.structured_content["passed"] is False  # type: ignore[index]
    assert judged.structured_content["problems"][0] == "Stopped on request."  # type: ignore[index]
