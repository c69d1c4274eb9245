"""Read a training log: progress, loss, epochs, saves, samples, completion, and errors in plain words.

Patterns come from ``data/log-patterns.json`` and ``data/error-signatures.json`` (copied from the shared
training reference, where each regex was tested on real log lines of the three backends).
"""

from __future__ import annotations

import functools
import json
import math
import re
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

from ategnatos_mcp.training.execution.models import CheckpointInfo, Diagnosis, SupervisorStatus, TrainingProgress
from ategnatos_mcp.training.execution.resume import ResumePoint

__all__ = [
    "OOM_IDS",
    "WARNING_IDS",
    "bar_seconds",
    "bar_seconds_per_step",
    "checkpoint_info",
    "diagnose",
    "parse_log",
    "progress_regex",
    "resume_note",
    "signatures",
]

# The error-signature notes: these ids mean CUDA ran out of memory (a smaller batch may help).
OOM_IDS = ("oom_allocator", "oom_legacy", "cuda_error_oom", "oom_expandable_segments", "aitk_oom_abort")
# Seen in healthy runs, or wrapper noise that points at the real error further up.
WARNING_IDS = frozenset({"aitk_oom_skip", "st_bucket_removed", "accelerate_wrapper"})
_LOG_KEYS = {"kohya": "kohya-sd-scripts", "ai-toolkit": "ai-toolkit", "simpletuner": "simpletuner"}

_EPOCH = re.compile(r"^epoch (\d+)/(\d+)\s*$")
_SAMPLE = re.compile(r"generating sample images at step / サンプル画像生成 ステップ: (\d+)")
_CHECKPOINT = re.compile(r"(?:^saving checkpoint: |^Saved checkpoint to |\[INFO\] Saving checkpoint to )(\S+)\s*$")
_COMPLETE = re.compile(r"model saved\.|Training has completed\.|^- 1 completed job")


def _data(name: str) -> Any:
    text = (
        resources.files("ategnatos_mcp.training.execution").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    )
    return json.loads(text)


@functools.cache
def signatures() -> tuple[dict[str, Any], ...]:
    """The 35 error signatures (id, regex, meaning, fix, ...)."""
    return tuple(_data("error-signatures.json"))


@functools.cache
def _compiled() -> tuple[tuple[dict[str, Any], re.Pattern[str]], ...]:
    return tuple((sig, re.compile(sig["regex"])) for sig in signatures())


@functools.cache
def _patterns() -> dict[str, Any]:
    return _data("log-patterns.json")


def progress_regex(backend: str, job_name: str | None = None) -> tuple[str, str]:
    """(progress line regex, loss regex) for ``backend``; ai-toolkit's is pinned to the job's name."""
    key = _LOG_KEYS[backend]
    progress: str = _patterns()["progress_line_regex"][key]
    if backend == "ai-toolkit" and job_name:
        # Other tqdm bars (latent caching, sampling) have the same shape: match only this job's bar.
        progress = progress.replace(r"(?P<job>[^:|]+?)", f"(?P<job>{re.escape(job_name)})")
    return progress, _patterns()["loss_in_progress_line_regex"][key]


def diagnose(line: str) -> Diagnosis | None:
    """The first error signature ``line`` matches, with its plain-language meaning and fix."""
    for sig, regex in _compiled():
        if regex.search(line):
            return Diagnosis(id=sig["id"], line=line.strip()[:300], meaning=sig["meaning"], fix=sig["fix"])
    return None


def _lines(text: str) -> list[str]:
    # tqdm redraws with carriage returns: every frame is a line of its own.
    return [line for line in re.split(r"[\r\n]", text) if line.strip()]


def parse_log(backend: str, text: str, *, job_name: str | None = None) -> TrainingProgress:
    """Everything the log of one run tells (later lines win)."""
    progress_pattern, loss_pattern = progress_regex(backend, job_name)
    progress_re, loss_re = re.compile(progress_pattern), re.compile(loss_pattern)
    result = TrainingProgress(backend=backend)
    seen_errors: set[str] = set()
    for line in _lines(text):
        stripped = line.strip()
        rest = line
        if match := progress_re.search(line):
            _apply_progress(result, match, loss_re.search(line))
            rest = line[match.end() :]  # progress frames are most lines: only what follows the bar can hold errors
            if result.loss_is_nan:
                _note(result, seen_errors, _diagnosis_by_id("progress_nan", line))
        elif epoch := _EPOCH.match(stripped):
            result.epoch, result.total_epochs = int(epoch.group(1)), int(epoch.group(2))
        if sample := _SAMPLE.search(line):
            step = int(sample.group(1))
            if step not in result.samples_at_steps:
                result.samples_at_steps.append(step)
        if saved := _CHECKPOINT.search(stripped):
            info = checkpoint_info(backend, saved.group(1))
            if info.file not in {c.file for c in result.checkpoints}:
                result.checkpoints.append(info)
        if _COMPLETE.search(stripped):
            result.completed = True
        if rest.strip():
            _note(result, seen_errors, diagnose(rest))
    return result


def _note(result: TrainingProgress, seen: set[str], found: Diagnosis | None) -> None:
    if found is not None and found.id not in seen:
        seen.add(found.id)
        result.errors.append(found)


def _diagnosis_by_id(sig_id: str, line: str) -> Diagnosis:
    sig = next(s for s in signatures() if s["id"] == sig_id)
    return Diagnosis(id=sig_id, line=line.strip()[:300], meaning=sig["meaning"], fix=sig["fix"])


def bar_seconds(text: str | None) -> float | None:
    """A tqdm time ('12:28', '4:35:07', '1d, 2:03:04') in seconds; None for '?' or anything else."""
    found = re.fullmatch(r"(?:(\d+)d, )?(?:(\d+):)?(\d+):(\d{2})", (text or "").strip())
    if found is None:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def bar_seconds_per_step(rate: str | None, unit: str | None) -> float | None:
    """tqdm's rate ('1.20' 'it/s', or '1.66' 's/it') as seconds per step; None when unknown ('?') or zero."""
    try:
        value = float(rate or "")
    except ValueError:
        return None
    if value <= 0 or math.isnan(value) or math.isinf(value):
        return None
    return value if unit == "s/it" else 1.0 / value


def _apply_progress(result: TrainingProgress, match: re.Match[str], loss: re.Match[str] | None) -> None:
    result.step, result.total_steps = int(match.group("step")), int(match.group("total"))
    groups = match.groupdict()
    result.elapsed_seconds = bar_seconds(groups.get("elapsed"))
    result.eta_seconds = bar_seconds(groups.get("eta"))
    result.seconds_per_step = bar_seconds_per_step(groups.get("rate"), groups.get("unit"))
    if groups.get("epoch"):
        result.epoch, result.total_epochs = int(groups["epoch"]), int(groups["epochs"])
    if loss:
        value = loss.group("loss")
        try:
            result.loss = float(value)
        except ValueError:
            result.loss = None
        result.loss_is_nan = result.loss is None or math.isnan(result.loss)
        if result.loss is not None and math.isnan(result.loss):
            result.loss = None


_KOHYA_EPOCH = re.compile(r"-(\d{6})\.safetensors$")
_KOHYA_STEP = re.compile(r"-step(\d{8})\.safetensors$")
_AITK_STEP = re.compile(r"_(\d{9})\.safetensors$")
_ST_STEP = re.compile(r"checkpoint-(\d+)(?:/pytorch_lora_weights\.safetensors)?/?$")


def checkpoint_info(backend: str, file: str, *, steps_per_epoch: int | None = None) -> CheckpointInfo:
    """Which epoch/step a saved file carries, read from the backend's naming convention (conventions.md)."""
    name = PurePosixPath(file).name
    step: int | None = None
    epoch: int | None = None
    kind = "final"
    if backend == "kohya" and (m := _KOHYA_EPOCH.search(name)):
        kind, epoch = "epoch", int(m.group(1))
    elif backend == "kohya" and (m := _KOHYA_STEP.search(name)):
        kind, step = "step", int(m.group(1))
    elif backend == "ai-toolkit" and (m := _AITK_STEP.search(name)):
        kind, step = "step", int(m.group(1))
    elif backend == "simpletuner" and (m := _ST_STEP.search(file)):
        kind, step = "step", int(m.group(1))
    if step is not None and steps_per_epoch:
        epoch = math.ceil(step / steps_per_epoch)
    return CheckpointInfo(file=file, kind=kind, epoch=epoch, step=step)  # type: ignore[arg-type]


def resume_note(
    backend: str,
    progress: TrainingProgress,
    status: SupervisorStatus | None = None,
    point: ResumePoint | None = None,
) -> str:
    """Where a restart would really begin, per backend (no promise the backend does not keep).

    ``point`` is the saved state found on the host (``resume.find_resume_point``); without one, nothing the
    backend can continue from was found.
    """
    if status is not None and status.state == "succeeded":
        return "The run finished: nothing to resume."
    if point is not None:
        how = {
            "kohya": f"sd-scripts continues from the saved state {point.source} (--resume)",
            "simpletuner": f"SimpleTuner continues from {point.source} (resume_from_checkpoint=latest)",
            "ai-toolkit": f"ai-toolkit continues from its newest save {point.source}",
        }.get(backend, f"it continues from {point.source}")
        return f"Resumable from step {point.step}: {how} with launch_training resume=true."
    saves = [c for c in progress.checkpoints if c.kind != "final"]
    if not saves:
        return "No checkpoint saved yet: a restart begins at step 0."
    last = saves[-1]
    where = f"epoch {last.epoch}" if last.kind == "epoch" else f"step {last.step}"
    if backend == "kohya":
        return (
            f"The newest LoRA file is at {where} ({last.file}), but no saved training state was found beside it "
            "(sd-scripts resumes only from a -state folder): started again, this run begins at step 0. "
            "That file can still be used or evaluated."
        )
    return (
        f"The newest save is at {where} ({last.file}), but it is no longer on the training machine: "
        "started again, this run begins at step 0."
    )
