"""The training-run tools through a real MCP client: gates 1-4 with the real tools, launch, status, evaluation.

Only the GPU is faked (tests/fixtures/training_exec/install.py): the supervisor and the stand-in trainer run
as real detached processes on this machine, printing the real kohya log format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from ategnatos_mcp.context import AppContext
from ategnatos_mcp.training.execution import HostRegistry
from tests.fixtures.training_exec.install import FakeInstall, make_fake_install

pytestmark = pytest.mark.anyio

PLAN = {
    "name": "ink",
    "dataset_path": "workspace/datasets/ink",
    "training_type": "style",
    "family": "SDXL",
    "base_model": "/models/sdxl.safetensors",
    "trigger_word": "ink_style",
    "gpu_vram_gb": 24,
    "preset": "quick",
    "sample_prompts": ["ink_style, a cat", "ink_style, a harbour at dawn"],
}


def _text(result: Any) -> str:
    return result.content[0].text


def _dataset(home: Path) -> Path:
    import numpy as np
    from PIL import Image

    folder = home / "workspace" / "datasets" / "ink"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(11)
    for i in range(10):
        blocks = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(blocks).resize((1024, 1024), Image.Resampling.NEAREST).save(folder / f"ink{i:02}.png")
        (folder / f"ink{i:02}.txt").write_text(f"ink_style, study {i}", encoding="utf-8")
    return folder


@pytest.fixture
def install(app: AppContext, tmp_path: Path) -> FakeInstall:
    fake = make_fake_install(tmp_path / "install")

    async def no_ssh():  # type: ignore[no-untyped-def]
        raise AssertionError("these tests run on the local host only")

    app.services["training-hosts"] = HostRegistry(app.settings.workspace_dir / "training", no_ssh, local_env=fake.env)
    return fake


async def _gates_1_and_2(client: Client, home: Path) -> tuple[Path, str]:
    folder = _dataset(home)
    audit = await client.call_tool(
        "dataset_audit", {"path": "workspace/datasets/ink", "training_name": "ink", "trigger_word": "ink_style"}
    )
    assert not audit.is_error and audit.structured_content["go"] is True, audit.content  # type: ignore[index]
    plan = await client.call_tool("train_plan", PLAN)
    assert not plan.is_error, plan.content
    config_hash = plan.structured_content["config_hash"]  # type: ignore[index]
    confirmed = await client.call_tool("train_confirm", {"name": "ink", "config_hash": config_hash})
    assert not confirmed.is_error, confirmed.content
    return folder, config_hash


async def test_full_path_gates_then_launch_status_and_evaluation(
    client: Client, home: Path, install: FakeInstall
) -> None:
    folder, config_hash = await _gates_1_and_2(client, home)

    early = await client.call_tool("launch_training", {"name": "ink"})
    assert early.is_error
    assert "Gate 3 (environment)" in _text(early) and "Gate 4 (dry run)" in _text(early)
    assert "Gate 1" not in _text(early) and "Gate 2" not in _text(early)

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
    assert result["progress"]["step"] == result["progress"]["total_steps"] == 10
    assert [c["kind"] for c in result["progress"]["checkpoints"]] == ["final"]
    assert result["gates"]["dry_run"]["status"] == "passed"
    assert result["gates"]["dry_run"]["config_hash"] == config_hash

    launched = await client.call_tool("launch_training", {"name": "ink"})
    assert not launched.is_error, launched.content
    assert "training_status" in _text(launched)

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
    assert f"Sample images: {epochs * 2} ({epochs * 2} new)" in _text(status)
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
    assert no_comfyui.is_error and "No ComfyUI is answering (http://127.0.0.1:9)" in _text(no_comfyui)
    assert "remote_deploy target='comfyui'" in _text(no_comfyui)

    (folder / "ink03.txt").write_text("ink_style, study three, revised", encoding="utf-8")
    stale = await client.call_tool("launch_training", {"name": "ink"})
    assert stale.is_error and "Gate 1 (dataset): the dataset changed" in _text(stale)


async def test_launch_is_refused_on_another_host_than_the_gates_checked(
    client: Client, home: Path, install: FakeInstall
) -> None:
    await _gates_1_and_2(client, home)
    refused = await client.call_tool("launch_training", {"name": "ink", "host": "root@10.0.0.9:2222"})
    assert refused.is_error
    assert "Gate 3 (environment): the environment on 10.0.0.9:2222 has not passed" in _text(refused)
    replanned = await client.call_tool("train_plan", {**PLAN, "overrides": {"network_rank": 8, "network_alpha": 8}})
    assert not replanned.is_error, replanned.content
    stale = await client.call_tool("launch_training", {"name": "ink"})
    assert stale.is_error and "Gate 2 (confirmation): the user has not confirmed" in _text(stale)


async def test_environment_problems_come_back_in_plain_words(client: Client, home: Path, tmp_path: Path) -> None:
    await _gates_1_and_2(client, home)
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
    assert dry.is_error and "gate 3" in _text(dry)


async def test_status_of_a_run_never_started_says_how_to_start_it(client: Client, home: Path) -> None:
    await _gates_1_and_2(client, home)
    result = await client.call_tool("training_status", {"name": "ink"})
    assert result.is_error and "launch_training" in _text(result)
    tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("train_validate_environment", "train_dry_run", "launch_training", "training_status", "train_evaluate"):
        assert tools[name].output_schema is not None


def _fake_env(app: AppContext, tmp_path: Path, **knobs: str) -> FakeInstall:
    fake = make_fake_install(tmp_path / "install")

    async def no_ssh():  # type: ignore[no-untyped-def]
        raise AssertionError("these tests run on the local host only")

    env = {**fake.env, **knobs}
    app.services["training-hosts"] = HostRegistry(app.settings.workspace_dir / "training", no_ssh, local_env=env)
    return fake


async def _through_gate_3(client: Client, home: Path, fake: FakeInstall) -> None:
    await _gates_1_and_2(client, home)
    env = await client.call_tool(
        "train_validate_environment", {"name": "ink", "backend_dir": fake.backend_dirs["kohya"]}
    )
    assert env.structured_content["passed"] is True, env.content  # type: ignore[index]


async def test_a_dry_run_that_only_fits_a_smaller_batch_fails_with_the_batch_that_fit(
    client: Client, app: AppContext, home: Path, tmp_path: Path
) -> None:
    fake = _fake_env(app, tmp_path, FAKE_OOM_ABOVE="1")
    await _through_gate_3(client, home, fake)
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert not dry.is_error, dry.content
    result = dry.structured_content
    assert result is not None and result["passed"] is False and result["state"] == "failed"
    assert "only fit at batch size 1" in result["problems"][0]
    assert "'batch_size': 1" in result["problems"][0]
    assert result["gates"]["dry_run"]["status"] == "failed"
    refused = await client.call_tool("launch_training", {"name": "ink"})
    assert refused.is_error and "Gate 4 (dry run): no passing dry run yet." in _text(refused)


async def test_a_running_dry_run_is_reattached_not_started_twice(
    client: Client, app: AppContext, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = _fake_env(app, tmp_path, FAKE_WAIT_FILE=str(go))
    await _through_gate_3(client, home, fake)
    first = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 0})
    assert first.structured_content["state"] == "running", first.content  # type: ignore[index]
    assert "Call train_dry_run again" in _text(first)
    go.touch()
    watched = await client.call_tool("training_status", {"name": "ink", "run": "dry_run", "wait_seconds": 60})
    assert watched.structured_content["state"] == "succeeded", watched.content  # type: ignore[index]
    assert "train_dry_run" in watched.structured_content["next_step"]  # type: ignore[index]
    second = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    result = second.structured_content
    assert result is not None and result["passed"] is True, result
    runs = list((home / "workspace" / "training" / "ink" / "runs").iterdir())
    assert [r.name.split("-")[0] for r in runs] == ["dry_run"]  # one run folder: the second call re-attached


async def test_stop_through_training_status(client: Client, app: AppContext, home: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    fake = _fake_env(app, tmp_path)
    await _through_gate_3(client, home, fake)
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    app.services["training-hosts"].local_env = {**fake.env, "FAKE_WAIT_FILE": str(go)}
    launched = await client.call_tool("launch_training", {"name": "ink"})
    assert not launched.is_error, launched.content
    again = await client.call_tool("launch_training", {"name": "ink"})
    assert again.is_error and "still going" in _text(again)
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
    stopped = await client.call_tool("training_status", {"name": "ink", "stop": True})
    assert not stopped.is_error, stopped.content
    assert stopped.structured_content["state"] == "stopped"  # type: ignore[index]
    progress_md = (home / "grimoire" / "training" / "ink" / "progress.md").read_text(encoding="utf-8")
    assert "State: stopped" in progress_md


async def _held_then_stopped(client: Client, app: AppContext, fake: FakeInstall, go: Path) -> dict[str, Any]:
    """Launch, wait until the trainer is held before its last step (every kept epoch saved), stop it."""
    app.services["training-hosts"].local_env = {**fake.env, "FAKE_WAIT_FILE": str(go)}
    launched = await client.call_tool("launch_training", {"name": "ink"})
    assert not launched.is_error, launched.content
    with anyio.fail_after(10):
        while True:
            status = (await client.call_tool("training_status", {"name": "ink"})).structured_content["status"]  # type: ignore[index]
            if status["total_steps"] and status["step"] == status["total_steps"] - 1:
                break
            await anyio.sleep(0.05)
    stopped = await client.call_tool("training_status", {"name": "ink", "stop": True})
    assert stopped.structured_content["state"] == "stopped", stopped.content  # type: ignore[index]
    return stopped.structured_content  # type: ignore[return-value]


async def test_an_interrupted_kohya_run_resumes_from_its_saved_state_and_finishes(
    client: Client, app: AppContext, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = _fake_env(app, tmp_path)
    await _through_gate_3(client, home, fake)
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    nothing = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert nothing.is_error and "no earlier training run of 'ink' to resume" in _text(nothing)

    report = await _held_then_stopped(client, app, fake, go)
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
    assert refused.is_error and "nothing to continue from" in _text(refused) and "without resume" in _text(refused)
    (tmp_path / "moved-state").rename(state)

    go.touch()
    resumed = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert not resumed.is_error, resumed.content
    assert f"resumed from step {saved_step}" in _text(resumed)
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
    assert again.is_error and "finished: there is nothing to resume" in _text(again)


async def test_a_resume_after_the_configuration_changed_is_refused(
    client: Client, app: AppContext, home: Path, tmp_path: Path
) -> None:
    fake = _fake_env(app, tmp_path)
    await _through_gate_3(client, home, fake)
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    await _held_then_stopped(client, app, fake, tmp_path / "go")
    app.services["training-hosts"].local_env = fake.env  # the next runs are not held
    replanned = await client.call_tool("train_plan", {**PLAN, "overrides": {"network_rank": 8, "network_alpha": 8}})
    assert not replanned.is_error, replanned.content
    refused = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert refused.is_error and "Gate 2 (confirmation)" in _text(refused)
    new_hash = replanned.structured_content["config_hash"]  # type: ignore[index]
    assert not (await client.call_tool("train_confirm", {"name": "ink", "config_hash": new_hash})).is_error
    env = await client.call_tool(
        "train_validate_environment", {"name": "ink", "backend_dir": fake.backend_dirs["kohya"]}
    )
    assert env.structured_content["passed"] is True, env.content  # type: ignore[index]
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    changed = await client.call_tool("launch_training", {"name": "ink", "resume": True})
    assert changed.is_error and "configuration of 'ink' changed since the earlier run" in _text(changed)
    assert "without resume" in _text(changed)


@pytest.mark.parametrize(("backend", "resume"), [("simpletuner", True), ("ai-toolkit", True), ("simpletuner", False)])
async def test_simpletuner_and_ai_toolkit_resume_from_their_newest_save(
    client: Client, app: AppContext, home: Path, tmp_path: Path, backend: str, resume: bool
) -> None:
    """They continue from their newest save by themselves: a plain relaunch says so instead of claiming step 0."""
    go = tmp_path / "go"
    fake = _fake_env(app, tmp_path)
    _dataset(home)
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

    report = await _held_then_stopped(client, app, fake, go)
    saved_step = report["resume_from_step"]
    assert saved_step and 0 < saved_step < report["status"]["total_steps"], report
    assert f"Resumable from step {saved_step}" in report["resume"]
    go.touch()
    resumed = await client.call_tool("launch_training", {"name": "ink", "resume": resume})
    assert not resumed.is_error, resumed.content
    assert resumed.structured_content["handle"]["resumed_from_step"] == saved_step  # type: ignore[index]
    assert f"resumed from step {saved_step}" in _text(resumed)
    assert ("continues from it by itself" in _text(resumed)) is not resume
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


async def _through_gate_4(client: Client, home: Path, fake: FakeInstall, backend: str, **plan: Any) -> None:
    _dataset(home)
    audit = await client.call_tool(
        "dataset_audit", {"path": "workspace/datasets/ink", "training_name": "ink", "trigger_word": "ink_style"}
    )
    assert audit.structured_content["go"] is True, audit.content  # type: ignore[index]
    planned = await client.call_tool("train_plan", {**PLAN, "backend": backend, **plan})
    assert not planned.is_error, planned.content
    config_hash = planned.structured_content["config_hash"]  # type: ignore[index]
    assert not (await client.call_tool("train_confirm", {"name": "ink", "config_hash": config_hash})).is_error
    env_args = {"name": "ink"} | ({"backend_dir": fake.backend_dirs[backend]} if backend in fake.backend_dirs else {})
    env = await client.call_tool("train_validate_environment", env_args)
    assert env.structured_content["passed"] is True, env.content  # type: ignore[index]
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]


async def test_a_resume_continues_at_the_batch_the_out_of_memory_ladder_reached(
    client: Client, app: AppContext, home: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    fake = _fake_env(app, tmp_path)
    await _through_gate_4(client, home, fake, "kohya")
    fake.env["FAKE_OOM_ABOVE"] = "1"  # the long run needs more memory than the dry run did
    report = await _held_then_stopped(client, app, fake, go)
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
    assert f"only fit at batch size 1 with gradient accumulation {effective}" in _text(resumed)
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


@pytest.mark.parametrize("backend", ["simpletuner", "ai-toolkit"])
async def test_fresh_moves_earlier_saves_aside_and_starts_at_step_zero(
    client: Client, app: AppContext, home: Path, tmp_path: Path, backend: str
) -> None:
    go = tmp_path / "go"
    fake = _fake_env(app, tmp_path)
    await _through_gate_4(client, home, fake, backend)
    report = await _held_then_stopped(client, app, fake, go)
    assert report["resume_from_step"], report
    output = home / "workspace" / "training" / "ink" / "output"
    before = sorted(p.relative_to(output) for p in output.rglob("*") if "dryrun" not in p.parts)
    assert before

    both = await client.call_tool("launch_training", {"name": "ink", "resume": True, "fresh": True})
    assert both.is_error and "choose one" in _text(both)
    go.touch()
    fresh = await client.call_tool("launch_training", {"name": "ink", "fresh": True})
    assert not fresh.is_error, fresh.content
    assert fresh.structured_content["resumed_from_step"] is None  # type: ignore[index]
    aside = Path(_text(fresh).split("moved (not deleted) to ")[1].split(".\n")[0].rstrip("."))
    assert aside.parent == output.parent / "earlier-saves"
    assert sorted(p.relative_to(aside) for p in aside.rglob("*")) == before  # every earlier file, untouched
    assert (output / "dryrun").is_dir()
    finished = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60})
    result = finished.structured_content
    assert result is not None and result["state"] == "succeeded", result
    log = (Path(fresh.structured_content["handle"]["run_dir"]) / "train.log").read_text()  # type: ignore[index]
    first = next(line for line in log.replace("\r", "\n").splitlines() if "%|" in line and "loss" in line)
    assert first.split("|")[2].split()[0] == f"1/{result['status']['total_steps']}"  # from the beginning
    assert "Resuming from" not in log


async def test_a_kohya_run_with_regularisation_images_runs_the_doubled_steps_the_plan_announced(
    client: Client, home: Path, install: FakeInstall
) -> None:
    _dataset(home)
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
