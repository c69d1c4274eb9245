"""Finding what a backend really saved to continue from, on a real (local) host folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ategnatos_mcp.training.execution.hosts import LocalHost
from ategnatos_mcp.training.execution.models import HostSpec, RunHandle
from ategnatos_mcp.training.execution.resume import (
    find_resume_point,
    leftover_saves,
    resume_command,
    saves_after,
    set_aside_saves,
)
from tests.support.training import layered_config, make_config


def _handle(output: Path, backend: str, kind: str = "training") -> RunHandle:
    return RunHandle(
        kind=kind,  # type: ignore[arg-type]
        host=HostSpec(),
        backend=backend,
        config_hash="abc",
        run_dir=str(output.parent / "runs" / "training-1"),
        output_dir=str(output),
        process_name="train-ink",
        job_name="ink",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_kohya_resumes_only_from_a_state_folder_and_reads_its_step(
    tmp_path: Path, dataset: Path, local: LocalHost
) -> None:
    cfg = make_config(dataset)
    output = tmp_path / "output"
    output.mkdir()
    (output / "ink-000002.safetensors").write_bytes(b"lora")  # a LoRA file alone cannot be resumed
    handle = _handle(output, "kohya")
    assert await find_resume_point(local, handle, cfg) is None
    for epoch, step in ((1, 8), (2, 16)):
        state = output / f"ink-{epoch:06d}-state"
        state.mkdir()
        (state / "train_state.json").write_text(json.dumps({"current_epoch": epoch, "current_step": step}))
    (output / "other-000009-state").mkdir()  # another run's state is not ours
    point = await find_resume_point(local, handle, cfg)
    assert point is not None and point.step == 16 and point.source == f"{output}/ink-000002-state"
    assert resume_command(["accelerate", "launch", "x.py"], point)[-1] == f"--resume={output}/ink-000002-state"
    (output / "ink-step00000020-state").mkdir()  # no train_state.json: the step in the name counts
    point = await find_resume_point(local, handle, cfg)
    assert point is not None and point.step == 20
    assert await find_resume_point(local, _handle(output, "kohya", kind="dry_run"), cfg) is None


async def test_simpletuner_and_ai_toolkit_resume_from_their_newest_save(
    tmp_path: Path, dataset: Path, local: LocalHost
) -> None:
    cfg = make_config(dataset)
    output = tmp_path / "output"
    assert await find_resume_point(local, _handle(output, "simpletuner"), cfg) is None  # no folder at all
    for step in (5, 10, 100):
        (output / f"checkpoint-{step}").mkdir(parents=True)
    point = await find_resume_point(local, _handle(output, "simpletuner"), cfg)
    assert point is not None and point.step == 100 and point.args == []
    (output / "ink").mkdir()
    for step in (250, 500):
        (output / "ink" / f"ink_{step:09d}.safetensors").write_bytes(b"lora")
    (output / "ink" / "ink.safetensors").write_bytes(b"final")
    point = await find_resume_point(local, _handle(output, "ai-toolkit"), cfg)
    assert point is not None and point.step == 500 and point.source.endswith("ink_000000500.safetensors")


async def test_kohya_state_named_by_epoch_counts_the_doubled_steps_of_a_run_with_regularisation_images(
    tmp_path: Path, local: LocalHost
) -> None:
    cfg = layered_config(
        name="ink"
    )  # 98 views per epoch at batch 2: 49 steps, which sd-scripts doubles with reg images
    output = tmp_path / "output"
    (output / "ink-000003-state").mkdir(parents=True)  # no train_state.json: only the epoch in the name
    point = await find_resume_point(local, _handle(output, "kohya"), cfg)
    assert point is not None and point.step == 3 * 2 * cfg.steps_per_epoch and point.epoch == 3


async def test_a_kohya_save_newer_than_its_newest_state_is_moved_aside_never_written_over(
    tmp_path: Path, dataset: Path, local: LocalHost
) -> None:
    """The run died between writing epoch 3's LoRA file and its state: a resume from epoch 2 would write it again."""
    cfg = make_config(dataset)  # 4 images, batch 1: 4 steps an epoch
    base = tmp_path / "runs" / "ink"
    output = base / "output"
    state = output / "ink-000002-state"
    state.mkdir(parents=True)
    (state / "train_state.json").write_text(json.dumps({"current_epoch": 2, "current_step": 8}))
    saves = {f"ink-{e:06d}.safetensors": f"epoch {e}".encode() for e in (1, 2, 3)}
    saves["ink-step00000010.safetensors"] = b"step 10"
    saves["ink-step00000006.safetensors"] = b"step 6"
    saves["other-000003.safetensors"] = b"another run's file"
    for name, data in saves.items():
        (output / name).write_bytes(data)
    handle = _handle(output, "kohya")
    point = await find_resume_point(local, handle, cfg)
    assert point is not None and (point.step, point.epoch) == (8, 2)
    later = await saves_after(local, handle, cfg, point)
    assert sorted(later) == ["ink-000003.safetensors", "ink-step00000010.safetensors"]
    assert await saves_after(local, _handle(output, "simpletuner"), cfg, point) == []

    moved = await set_aside_saves(local, str(base), datetime(2026, 11, 29, tzinfo=UTC), entries=later)
    assert moved is not None and moved == f"{base}/earlier-saves/20261129-000000"
    assert {p.name: p.read_bytes() for p in Path(moved).iterdir()} == {n: saves[n] for n in later}
    kept = {p.name: p.read_bytes() for p in output.iterdir() if p.is_file()}
    assert kept == {n: d for n, d in saves.items() if n not in later}  # the saves it continues after stay put
    (output / "dryrun").mkdir()  # the dry run's folder and SimpleTuner's cache are no saves
    (output / "cache").mkdir()
    assert set(await leftover_saves(local, str(base))) == {*kept, state.name}
