"""Honest resume: find what the backend really saved to continue from, and the command form that uses it.

- kohya sd-scripts: ``save_state`` writes ``<output_name>-<epoch:06d>-state/`` (``-step<step:08d>-state``,
  ``-state`` at the end) holding ``train_state.json`` (``current_epoch``, ``current_step``); a restart continues
  only with ``--resume <state folder>``. A LoRA file alone is not enough.
- SimpleTuner: ``<output_dir>/checkpoint-<step>/``; ``resume_from_checkpoint`` defaults to ``latest``, so the
  same command continues from the newest one.
- ai-toolkit: ``<training_folder>/<name>/<name>_<step:09d>.safetensors`` (+ ``optimizer.pt``); starting the same
  config again continues from the newest save.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from pydantic import BaseModel, Field

from ategnatos_mcp.errors import StateError
from ategnatos_mcp.training import TrainingConfig
from ategnatos_mcp.training.execution.hosts import TrainingHost
from ategnatos_mcp.training.execution.models import RunHandle
from ategnatos_mcp.training.execution.shell import listing, quoted
from ategnatos_mcp.training.steps import backend_steps_per_epoch

__all__ = ["ResumePoint", "find_resume_point", "leftover_saves", "resume_command", "saves_after", "set_aside_saves"]

_ST_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class ResumePoint(BaseModel):
    """Where a restart of a run really continues from."""

    backend: str
    step: int = Field(description="The optimizer step the resumed run starts counting from.")
    epoch: int | None = None
    source: str = Field(description="The saved state folder or checkpoint on the host.")
    args: list[str] = Field(default_factory=list, description="Extra launch arguments the resume needs.")


def _steps_per_epoch(cfg: TrainingConfig) -> int | None:
    return backend_steps_per_epoch(cfg, "kohya") or None  # only kohya's resume needs it (epoch-named states)


async def _kohya(host: TrainingHost, handle: RunHandle, cfg: TrainingConfig) -> ResumePoint | None:
    name = re.escape(cfg.name)
    pattern = re.compile(rf"^{name}(?:-(\d{{6}})|-step(\d{{8}}))?-state$")
    found: list[tuple[int, str]] = []
    for entry in await listing(host, handle.output_dir):
        if not (match := pattern.match(entry)):
            continue
        folder = f"{handle.output_dir}/{entry}"
        text = await host.read_text(f"{folder}/train_state.json")
        step: int | None = None
        epoch = int(match.group(1)) if match.group(1) else None
        if text:
            try:
                data = json.loads(text)
                step, epoch = int(data["current_step"]), int(data.get("current_epoch", epoch or 0)) or epoch
            except (ValueError, KeyError, TypeError):
                step = None
        if step is None and match.group(2):
            step = int(match.group(2))
        if step is None and epoch is not None and (per_epoch := _steps_per_epoch(cfg)):
            step = epoch * per_epoch
        if step is not None:
            found.append((step, folder))
    if not found:
        return None
    step, folder = max(found)
    per_epoch = _steps_per_epoch(cfg)
    epoch = step // per_epoch if per_epoch else None
    return ResumePoint(backend="kohya", step=step, epoch=epoch, source=folder, args=[f"--resume={folder}"])


async def _simpletuner(host: TrainingHost, handle: RunHandle) -> ResumePoint | None:
    steps = [int(m.group(1)) for e in await listing(host, handle.output_dir) if (m := _ST_CHECKPOINT.match(e))]
    if not steps:
        return None
    step = max(steps)
    return ResumePoint(backend="simpletuner", step=step, source=f"{handle.output_dir}/checkpoint-{step}")


async def _aitoolkit(host: TrainingHost, handle: RunHandle) -> ResumePoint | None:
    if not handle.job_name:
        return None
    folder = f"{handle.output_dir}/{handle.job_name}"
    pattern = re.compile(rf"^{re.escape(handle.job_name)}_(\d{{9}})\.safetensors$")
    steps = [int(m.group(1)) for e in await listing(host, folder) if (m := pattern.match(e))]
    if not steps:
        return None
    step = max(steps)
    return ResumePoint(backend="ai-toolkit", step=step, source=f"{folder}/{handle.job_name}_{step:09d}.safetensors")


async def find_resume_point(host: TrainingHost, handle: RunHandle, cfg: TrainingConfig) -> ResumePoint | None:
    """The newest state ``handle``'s backend can really continue from, or None (a restart begins at step 0)."""
    if handle.kind != "training":
        return None
    if handle.backend == "kohya":
        return await _kohya(host, handle, cfg)
    if handle.backend == "simpletuner":
        return await _simpletuner(host, handle)
    return await _aitoolkit(host, handle)


def resume_command(command: list[str], point: ResumePoint) -> list[str]:
    """The launch command in its resume form (sd-scripts needs ``--resume``; the others resume by themselves)."""
    return [*command, *point.args]


async def saves_after(host: TrainingHost, handle: RunHandle, cfg: TrainingConfig, point: ResumePoint) -> list[str]:
    """Saves in ``handle``'s output folder that a resume from ``point`` would write again (names in that folder).

    Only kohya can have any: a LoRA file saved after its newest training state (e.g. the run died between writing
    the epoch's LoRA file and its state). SimpleTuner and ai-toolkit continue from their newest save itself.
    """
    if handle.backend != "kohya":
        return []
    pattern = re.compile(rf"^{re.escape(cfg.name)}(?:-(\d{{6}})|-step(\d{{8}}))?\.safetensors$")
    later: list[str] = []
    for entry in await listing(host, handle.output_dir):
        if not (match := pattern.match(entry)):
            continue
        epoch, step = match.group(1), match.group(2)
        if epoch is None and step is None:
            later.append(entry)  # the final file: the resumed run writes it at its end
        elif epoch is not None and point.epoch is not None and int(epoch) > point.epoch:
            later.append(entry)
        elif step is not None and int(step) > point.step:
            later.append(entry)
    return later


_NOT_SAVES = ("dryrun", "cache")  # the dry run's own folder; SimpleTuner's latent cache (made again if missing)


async def leftover_saves(host: TrainingHost, base: str) -> list[str]:
    """What is in ``<base>/output`` besides the dry run's folder and caches: files a first launch must not touch."""
    return [e for e in await listing(host, f"{base}/output") if e not in _NOT_SAVES]


async def set_aside_saves(host: TrainingHost, base: str, now: datetime, entries: list[str] | None = None) -> str | None:
    """Move ``entries`` of ``<base>/output`` (default: everything earlier training runs left there: checkpoints,
    states, samples, LoRA files) into ``<base>/earlier-saves/<stamp>/``, so no backend finds or writes over them.
    Nothing is deleted; the dry run's folder stays. Returns the folder they went to, or None when there was nothing.

    Raises:
        StateError: the move failed on the host (the message carries its error).
    """
    output = f"{base}/output"
    if entries is None:
        entries = [e for e in await listing(host, output) if e != "dryrun"]
    if not entries:
        return None
    target = f"{base}/earlier-saves/{now:%Y%m%d-%H%M%S}"
    for n in range(2, 100):  # two fresh starts in one second keep separate folders
        if not await listing(host, target):
            break
        target = f"{base}/earlier-saves/{now:%Y%m%d-%H%M%S}-{n}"
    sources = " ".join(quoted(f"{output}/{entry}") for entry in entries)
    # -n: never replace a file already there (the folder is new; this is the last line of defence).
    done = await host.run(f"mkdir -p {quoted(target)} && mv -n -- {sources} {quoted(target)}/", timeout=120)
    if done.exit_status != 0:
        raise StateError(
            f"Could not move the earlier saves aside on {host.spec.identity}: {done.stderr.strip()[-300:]}",
            hint="Check the disk there is writable, or move the output folder's contents yourself, then launch again.",
        )
    return target
