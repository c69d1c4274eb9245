"""Sample images made during training: each backend's file names read back, listed once as new, previewed."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from PIL import Image

from ategnatos_mcp.training.execution.hosts import LocalHost
from ategnatos_mcp.training.execution.plans import read_execution, update_execution
from ategnatos_mcp.training.execution.runner import start_run, wait_for_run
from ategnatos_mcp.training.execution.samples import parse_sample_name, sample_folder, sample_previews
from ategnatos_mcp.training.execution.tracking import follow_run
from ategnatos_mcp.wiring import Wiring
from tests.support.fake_install import FakeInstall
from tests.support.training import make_config

PROMPTS = ["ink_style, a cat", "ink_style, a lighthouse at night"]


def _parse(backend: str, name: str, per_epoch: int | None = 10):  # type: ignore[no-untyped-def]
    parsed = parse_sample_name(backend, name, output_name="ink", prompts=PROMPTS, steps_per_epoch=per_epoch)
    return None if parsed is None else parsed[0]


def test_each_backend_names_are_read_for_step_epoch_and_prompt() -> None:
    kohya = _parse("kohya", "ink_e000002_01_20250302142109.png")
    assert kohya is not None and (kohya.epoch, kohya.step, kohya.prompt) == (2, 20, PROMPTS[1])
    by_step = _parse("kohya", "ink_000500_00_20250302142109_42.png")  # sample_every_n_steps, with a seed
    assert by_step is not None and (by_step.step, by_step.epoch, by_step.prompt) == (500, 50, PROMPTS[0])
    assert _parse("kohya", "other_e000002_01_20250302142109.png") is None  # another run's output name
    assert _parse("kohya", "ink-000002.safetensors") is None

    validation = _parse("simpletuner", "step_30_validation_1024x1024.png")
    assert validation is not None and (validation.step, validation.epoch, validation.prompt) == (30, 3, PROMPTS[0])
    unconditional = _parse("simpletuner", "step_30_unconditional_1024x1024.png")
    assert unconditional is not None and unconditional.prompt == ""
    library = _parse("simpletuner", "step_30_my_shortname_832x1216.png")
    assert library is not None and library.prompt is None  # a prompt-library entry we did not write

    aitk = _parse("ai-toolkit", "1732900000123__000000250_1.jpg")
    assert aitk is not None and (aitk.step, aitk.epoch, aitk.prompt) == (250, 25, PROMPTS[1])
    baseline = _parse("ai-toolkit", "1732900000123__0.jpg")
    assert baseline is not None and baseline.step == 0 and baseline.prompt == PROMPTS[0]
    assert _parse("ai-toolkit", "ink_000000250.safetensors") is None


@pytest.mark.parametrize(
    ("backend", "expected_steps"),
    [("kohya", [24, 16, 8]), ("simpletuner", [24, 16, 8]), ("ai-toolkit", [24, 16, 8, 0])],
)
async def test_sample_images_of_a_run_are_listed_newest_first_once_as_new_with_previews(
    app: Wiring,
    tmp_path: Path,
    local: LocalHost,
    install: FakeInstall,
    dataset: Path,
    backend: str,
    expected_steps: list[int],
) -> None:
    cfg = make_config(dataset, images=8, sample_prompts=PROMPTS, sample_every_epochs=1)
    handle = await start_run(
        local,
        kind="training",
        cfg=cfg,
        backend=backend,
        backend_dir=install.backend_dirs.get(backend, ""),
        dataset_dir=str(dataset),
        now=datetime(2026, 11, 29, 17, 0, tzinfo=UTC),
    )
    async with update_execution(app.store, cfg.name) as upd:
        upd.doc.training = handle
    with anyio.fail_after(30):
        status = await wait_for_run(local, handle, 30)
    assert status.state == "succeeded", status.message

    report = await follow_run(local, app.store, handle, cfg, samples_dir=tmp_path / "fetched")
    samples = report.samples
    per_step = 2  # two prompts (SimpleTuner: its validation prompt + the unconditional image)
    assert samples.total == len(expected_steps) * per_step == samples.new
    assert [s.step for s in samples.samples] == [step for step in expected_steps for _ in range(per_step)]
    assert all(s.file.startswith(sample_folder(handle)) and s.local_path == s.file for s in samples.samples)
    assert all(Path(s.file).is_file() for s in samples.samples)
    prompts = {s.prompt for s in samples.samples}
    assert prompts == ({PROMPTS[0], ""} if backend == "simpletuner" else set(PROMPTS))
    assert {s.epoch for s in samples.samples if s.step} == {1, 2, 3}
    progress_md = (app.settings.grimoire_dir / "training" / "ink" / "progress.md").read_text(encoding="utf-8")
    assert "## Sample images" in progress_md and samples.samples[0].file in progress_md

    previews = await sample_previews(samples, count=3, budget_bytes=30_000)
    assert [p.file for p in previews] == [s.file for s in samples.samples[:3]]  # newest first
    assert sum(len(p.data) for p in previews) <= 30_000
    for preview in previews:
        with Image.open(io.BytesIO(preview.data)) as im:
            assert im.format == "JPEG" and max(im.size) <= 384

    recorded = (await read_execution(app.store, cfg.name)).training  # as training_status finds it next time
    assert recorded is not None and len(recorded.samples_seen) == samples.total
    again = await follow_run(local, app.store, recorded, cfg, samples_dir=tmp_path / "fetched")
    assert again.samples.total == samples.total and again.samples.new == 0
    assert not any(s.new for s in again.samples.samples)
    assert await sample_previews(again.samples, count=3) == []  # nothing new to show
