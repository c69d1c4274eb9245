"""Following a finished run: which saved file is which epoch, progress.md, and the saves an evaluation compares."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import anyio

from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training.evaluation import choose_saves
from ategnatos_mcp.training.execution.hosts import LocalHost
from ategnatos_mcp.training.execution.runner import start_run
from ategnatos_mcp.training.execution.tracking import follow_run
from tests.support.fake_install import FakeInstall
from tests.support.training import make_config


async def test_simpletuner_checkpoints_map_to_epochs_and_get_distinct_comfyui_names(
    local: LocalHost, install: FakeInstall, dataset: Path, tmp_path: Path
) -> None:
    cfg = make_config(dataset, images=8, epochs=3)
    handle = await start_run(
        local, kind="training", cfg=cfg, backend="simpletuner", backend_dir="", dataset_dir=str(dataset),
        now=datetime(2026, 11, 29, tzinfo=UTC),
    )  # fmt: skip
    store = GrimoireStore(tmp_path / "grimoire")
    with anyio.fail_after(30):
        report = await follow_run(local, store, handle, cfg, wait_seconds=30)
    assert report.state == "succeeded", report.status
    assert report.next_step.startswith("Finished. Compare the last saves side by side with train_evaluate")
    assert "gpu_teardown" not in report.next_step  # nothing rented here
    assert [(c.kind, c.step, c.epoch) for c in report.checkpoints] == [
        ("step", 8, 1),
        ("step", 16, 2),
        ("step", 24, 3),
        ("final", None, None),
    ]
    assert all(c.file.endswith("pytorch_lora_weights.safetensors") for c in report.checkpoints)
    assert Path(report.checkpoints[-1].file).is_file()
    saves = choose_saves("ink", report.checkpoints, None, report.status.total_epochs)
    assert [(s.label, s.comfyui_name) for s in saves] == [  # the last step save is the final file's twin
        ("step 8 (epoch 1)", "ategnatos/ink/ink-step00000008.safetensors"),
        ("step 16 (epoch 2)", "ategnatos/ink/ink-step00000016.safetensors"),
        ("final (epoch 3)", "ategnatos/ink/ink.safetensors"),
    ]
    assert [s.file for s in choose_saves("ink", report.checkpoints, [2], 3)] == [report.checkpoints[1].file]


async def test_progress_md_lists_each_epoch_file_and_the_honest_resume(
    local: LocalHost, install: FakeInstall, dataset: Path, tmp_path: Path
) -> None:
    cfg = make_config(dataset, images=8, epochs=3)
    handle = await start_run(
        local, kind="training", cfg=cfg, backend="kohya", backend_dir=install.backend_dirs["kohya"],
        dataset_dir=str(dataset), now=datetime(2026, 11, 29, tzinfo=UTC),
    )  # fmt: skip
    store = GrimoireStore(tmp_path / "grimoire")
    with anyio.fail_after(30):
        report = await follow_run(local, store, handle, cfg, wait_seconds=30, log_lines=3)
    assert [(c.kind, c.epoch) for c in report.checkpoints] == [("epoch", 1), ("epoch", 2), ("final", None)]
    assert report.log_tail is not None and report.log_tail.splitlines()[-1].strip().startswith("INFO     model saved.")
    text = (tmp_path / "grimoire" / "training" / "ink" / "progress.md").read_text(encoding="utf-8")
    assert "| " + str(Path(handle.output_dir) / "ink-000002.safetensors") + " | epoch | 2 | - |" in text
    assert "Resume: The run finished: nothing to resume." in text and "State: succeeded" in text
