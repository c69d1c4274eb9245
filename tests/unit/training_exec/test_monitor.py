"""The log monitor on the real log samples of the three backends (tests/fixtures/training_exec/*.txt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ategnatos_mcp.training.execution.models import CheckpointInfo, SupervisorStatus
from ategnatos_mcp.training.execution.monitor import checkpoint_info, diagnose, parse_log, resume_note, signatures
from ategnatos_mcp.training.execution.resume import ResumePoint

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "training_exec"


def _sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def _lines_until(name: str, last_line: int) -> str:
    return "\n".join(_sample(name).splitlines()[:last_line])


def test_kohya_progress_epochs_saves_and_completion() -> None:
    progress = parse_log("kohya", _lines_until("kohya-sd-scripts.txt", 61))
    assert (progress.step, progress.total_steps) == (1600, 1600)
    assert progress.loss == pytest.approx(0.0987) and not progress.loss_is_nan
    assert (progress.epoch, progress.total_epochs) == (2, 80)
    assert progress.checkpoints == [
        CheckpointInfo(file="output/testwoman_v1-000001.safetensors", kind="epoch", epoch=1),
        CheckpointInfo(file="output/my_flux_lora-step00000500.safetensors", kind="step", step=500),
        CheckpointInfo(file="output/my_flux_lora-000002.safetensors", kind="epoch", epoch=2),
        CheckpointInfo(file="output/my_flux_lora.safetensors", kind="final"),
    ]
    assert progress.samples_at_steps == [500]
    assert progress.completed
    assert [e.id for e in progress.errors] == ["progress_nan"]  # lines 42/45 show avr_loss=nan


def test_kohya_errors_come_back_with_plain_fixes() -> None:
    progress = parse_log("kohya", _sample("kohya-sd-scripts.txt"))
    ids = [e.id for e in progress.errors]
    assert ids == [
        "progress_nan",
        "kohya_nan_latents_warning",
        "kohya_nan_latents",
        "kohya_ignore_dir",
        "kohya_no_data",
        "oom_allocator",
        "accelerate_wrapper",
    ]
    oom = next(e for e in progress.errors if e.id == "oom_allocator")
    assert "Halve the batch size" in oom.fix


def test_simpletuner_progress_checkpoints_and_nonfinite_loss() -> None:
    progress = parse_log("simpletuner", _lines_until("simpletuner.txt", 41))
    assert (progress.step, progress.total_steps, progress.epoch, progress.total_epochs) == (1500, 3000, 5, 10)
    assert progress.loss is None and progress.loss_is_nan
    assert progress.checkpoints == [CheckpointInfo(file="output/models/checkpoint-500", kind="step", step=500)]
    assert progress.completed
    assert {"progress_nan", "st_nonfinite_loss", "st_bucket_removed"} <= {e.id for e in progress.errors}


def test_aitoolkit_bar_is_pinned_to_the_job_and_saves_carry_steps() -> None:
    text = _lines_until("ai-toolkit.txt", 49)
    progress = parse_log("ai-toolkit", text, job_name="my_first_flux_lora_v1")
    assert (progress.step, progress.total_steps) == (1250, 2000)  # not the 'Generating Images' bar
    assert progress.loss == pytest.approx(0.2984)
    assert [c.step for c in progress.checkpoints] == [250, 1250]
    assert not progress.completed
    full = parse_log("ai-toolkit", _sample("ai-toolkit.txt"), job_name="my_first_flux_lora_v1")
    assert full.completed
    assert {"aitk_loss_nan", "aitk_oom_skip", "oom_allocator", "hf_gated"} <= {e.id for e in full.errors}


def test_checkpoint_names_tell_epoch_and_step() -> None:
    assert checkpoint_info("kohya", "out/ink-000003.safetensors") == CheckpointInfo(
        file="out/ink-000003.safetensors", kind="epoch", epoch=3
    )
    assert checkpoint_info("ai-toolkit", "o/ink/ink_000000250.safetensors", steps_per_epoch=100).epoch == 3
    assert checkpoint_info("simpletuner", "o/checkpoint-500", steps_per_epoch=250) == CheckpointInfo(
        file="o/checkpoint-500", kind="step", step=500, epoch=2
    )


def test_resume_is_honest_per_backend() -> None:
    kohya = parse_log("kohya", "saving checkpoint: out/ink-000002.safetensors\n")
    assert "begins at step 0" in resume_note("kohya", kohya, SupervisorStatus())
    state = ResumePoint(backend="kohya", step=40, source="out/ink-000002-state", args=["--resume=out/ink-000002-state"])
    assert "Resumable from step 40" in resume_note("kohya", kohya, SupervisorStatus(state="stopped"), state)
    assert "(--resume)" in resume_note("kohya", kohya, SupervisorStatus(state="stopped"), state)
    aitk = parse_log("ai-toolkit", "Saved checkpoint to out/ink/ink_000000250.safetensors\n", job_name="ink")
    assert "begins at step 0" in resume_note("ai-toolkit", aitk)  # the file is gone from the host
    saved = ResumePoint(backend="ai-toolkit", step=250, source="out/ink/ink_000000250.safetensors")
    assert "Resumable from step 250" in resume_note("ai-toolkit", aitk, None, saved)
    assert "begins at step 0" in resume_note("simpletuner", parse_log("simpletuner", ""))
    done = SupervisorStatus(state="succeeded")
    assert resume_note("kohya", kohya, done, state) == "The run finished: nothing to resume."


def test_every_signature_matches_its_own_test_strings() -> None:
    for sig in signatures():
        for sample in sig.get("test_strings", []):
            found = diagnose(sample)
            assert found is not None, (sig["id"], sample)
