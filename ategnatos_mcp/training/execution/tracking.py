"""Re-attach to a started run: read the supervisor's status and the log, say where it is, write progress.md."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from ategnatos_mcp.progress import Progress
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import TrainingConfig, find_versions, read_gates, record_training_outcome, write_records
from ategnatos_mcp.training.execution.hosts import TrainingHost
from ategnatos_mcp.training.execution.ladder import out_of_memory_advice
from ategnatos_mcp.training.execution.models import (
    CheckpointInfo,
    Diagnosis,
    RunHandle,
    SupervisorState,
    SupervisorStatus,
    TrainingProgress,
)
from ategnatos_mcp.training.execution.monitor import WARNING_IDS, checkpoint_info, resume_note
from ategnatos_mcp.training.execution.plans import update_execution
from ategnatos_mcp.training.execution.resume import find_resume_point
from ategnatos_mcp.training.execution.run_cost import RunCost, run_cost
from ategnatos_mcp.training.execution.runner import (
    parse_run_log,
    read_log_tail,
    read_status,
    stop_run,
    wait_for_run,
)
from ategnatos_mcp.training.execution.samples import SampleSet, collect_samples
from ategnatos_mcp.training.execution.timing import Stall, TimeLeft, find_stall, time_left
from ategnatos_mcp.training.models import TrainingOutcome
from ategnatos_mcp.training.steps import backend_steps_per_epoch

__all__ = ["RunReport", "follow_run", "render_progress_md"]

_ST_WEIGHTS = "pytorch_lora_weights.safetensors"


class RunReport(BaseModel):
    """A run as it stands: supervisor status, what the log says, the saved LoRA files, and what to do."""

    name: str
    kind: str
    host: str
    state: str
    status: SupervisorStatus
    progress: TrainingProgress
    checkpoints: list[CheckpointInfo] = Field(description="Saved LoRA files with the epoch/step each carries.")
    problems: list[Diagnosis] = Field(default_factory=list)
    resume: str
    resume_from_step: int | None = Field(
        default=None, description="The step launch_training(resume=true) would continue from (last saved state)."
    )
    resumed_from_step: int | None = Field(default=None, description="This run continued an earlier one from here.")
    samples: SampleSet = Field(
        default_factory=SampleSet, description="Sample images made during training (path, step/epoch, prompt)."
    )
    time_left: TimeLeft | None = Field(default=None, description="While it runs: how long it still needs.")
    cost: RunCost | None = Field(default=None, description="On a rented GPU: this run's cost so far and in all.")
    stall: Stall | None = Field(default=None, description="Set when the log has not moved for a while: what to do.")
    log_tail: str | None = None
    notices: list[str] = Field(default_factory=list)
    next_step: str


def _steps_per_epoch(status: SupervisorStatus, cfg: TrainingConfig, backend: str) -> int:
    if status.total_steps and status.total_epochs:
        return max(1, status.total_steps // status.total_epochs)
    return backend_steps_per_epoch(cfg, backend)


def _checkpoints(
    handle: RunHandle, status: SupervisorStatus, progress: TrainingProgress, cfg: TrainingConfig
) -> list[CheckpointInfo]:
    per_epoch = _steps_per_epoch(status, cfg, handle.backend)
    files = [c.file for c in progress.checkpoints] or [str(c.get("file")) for c in status.checkpoints]
    if handle.backend == "simpletuner":
        # Its checkpoints are folders holding the LoRA; the final weights land in output_dir unannounced.
        files = [f"{f.rstrip('/')}/{_ST_WEIGHTS}" for f in files]
        if status.state == "succeeded":
            files.append(f"{handle.output_dir}/{_ST_WEIGHTS}")
    infos = [checkpoint_info(handle.backend, f, steps_per_epoch=per_epoch) for f in files]
    return infos


def _next_step(name: str, kind: str, status: SupervisorStatus, *, rented: bool, resumable: bool) -> str:
    if status.state in ("starting", "running", "retrying"):
        return "Still running: check again later with training_status (it keeps running if this conversation ends)."
    if kind == "dry_run":
        return "The dry run has ended: call train_dry_run on the same host to judge it and record gate 4."
    again = (
        f"To train again, train_plan with name='{name}' plans a new version in its own folder (this run's files "
        "stay as they are)."
    )
    if status.state == "succeeded":
        evaluate = (
            "Finished. Compare the last saves side by side with train_evaluate (one contact sheet), then bring the "
            "best one home with train_evaluate action='keep' epoch=<N> weight=<W>: it is copied into the workspace "
            "and registered in the studio for art_prompt."
        )
        if not rented:  # this machine: there is no instance to tear down
            return f"{evaluate} {again}"
        return f"{evaluate} Tear the GPU instance down once it is home (gpu_teardown). {again}"
    resume = (
        f"launch_training(name='{name}', resume=true) continues this run from its last saved state when ready"
        if resumable
        else "It saved no state to continue from"
    )
    if status.state == "stopped":
        return f"Stopped on request. {resume}. {again}"
    return (
        f"Read the problems above and fix them. {resume}. {again} A new version is also the way to change "
        "settings (it goes through the gates again)."
    )


def render_progress_md(name: str, report: RunReport) -> str:
    status, progress = report.status, report.progress
    lines = [
        f"# {name}: training progress",
        "",
        f"- Host: {report.host}",
        f"- State: {report.state}" + (f" ({status.message})" if status.message else ""),
        f"- Step: {status.step} of {status.total_steps or '?'}"
        + (f", epoch {status.epoch} of {status.total_epochs}" if status.epoch else ""),
        f"- Batch size {status.batch_size}, gradient accumulation {status.gradient_accumulation}"
        f" (attempt {status.attempt})",
    ]
    if status.savers:
        lines.append(f"- Memory savers switched on after running out of memory: {', '.join(status.savers)}")
    if report.time_left is not None:
        lines.append(f"- Time left: {report.time_left.words}")
    if report.cost is not None:
        lines.append(f"- Cost: {report.cost.words}")
    if report.stall is not None:
        lines.append(f"- Warning: {report.stall.warning}")
    if report.resumed_from_step is not None:
        lines.append(f"- Resumed from step {report.resumed_from_step} of an earlier run")
    if progress.loss is not None or progress.loss_is_nan:
        lines.append(f"- Loss: {'NaN (the run is broken)' if progress.loss_is_nan else f'{progress.loss:g}'}")
    lines += ["", "## Saved LoRA files", ""]
    if report.checkpoints:
        lines += ["| file | kind | epoch | step |", "|---|---|---|---|"]
        lines += [f"| {c.file} | {c.kind} | {c.epoch or '-'} | {c.step or '-'} |" for c in report.checkpoints]
    else:
        lines.append("None yet.")
    if report.samples.total:
        lines += ["", "## Sample images", "", "| image | step | epoch | prompt |", "|---|---|---|---|"]
        lines += [
            f"| {s.local_path or s.file} | {s.step if s.step is not None else '-'} | {s.epoch or '-'} | "
            f"{'(none)' if s.prompt == '' else (s.prompt or '?').replace('|', '/')} |"
            for s in report.samples.samples
        ]
        if report.samples.total > len(report.samples.samples):
            lines.append(f"(the newest {len(report.samples.samples)} of {report.samples.total})")
    lines += ["", f"Resume: {report.resume}"]
    if report.problems:
        lines += ["", "## Problems", "", *(f"- {p.meaning} Fix: {p.fix}" for p in report.problems)]
    lines += ["", f"Next: {report.next_step}"]
    return "\n".join(lines) + "\n"


async def follow_run(
    host: TrainingHost,
    store: GrimoireStore,
    handle: RunHandle,
    cfg: TrainingConfig,
    *,
    wait_seconds: float = 0.0,
    log_lines: int = 0,
    stop: bool = False,
    report: Progress | None = None,
    samples_dir: Path | None = None,
    now: datetime | None = None,
    stall_seconds: float = 15 * 60,
) -> RunReport:
    """Status, progress and files of ``handle``; optionally stop it or wait for it; progress.md is rewritten.

    Sample images of a training run are listed (new ones fetched into ``samples_dir`` from an SSH host first);
    the batch the run really runs at (after any OOM halving) is recorded for a later resume.
    """
    if stop:
        status = await stop_run(host, handle)
    elif wait_seconds > 0:
        status = await wait_for_run(host, handle, wait_seconds, report)
    else:
        status = await read_status(host, handle)
    log = await read_log_tail(host, handle)
    progress = await parse_run_log(handle, log)
    point = None if status.state == "succeeded" else await find_resume_point(host, handle, cfg)
    progress.resume = resume_note(handle.backend, progress, status, point)
    kept = [line for line in log.replace("\r", "\n").splitlines() if line.strip()]
    samples, newly_seen = SampleSet(), []
    if handle.kind == "training" and samples_dir is not None:
        samples, newly_seen = await collect_samples(
            host,
            handle,
            output_name=cfg.name,
            prompts=list(cfg.sample_prompts),
            steps_per_epoch=_steps_per_epoch(status, cfg, handle.backend),
            local_dir=samples_dir,
        )
    result = RunReport(
        name=cfg.name,
        kind=handle.kind,
        host=handle.host.identity,
        state=status.state,
        status=status,
        progress=progress,
        checkpoints=_checkpoints(handle, status, progress, cfg),
        problems=[e for e in progress.errors if e.id not in WARNING_IDS],
        resume=progress.resume,
        resume_from_step=point.step if point else None,
        resumed_from_step=handle.resumed_from_step,
        samples=samples,
        log_tail="\n".join(kept[-log_lines:]) if log_lines else None,
        next_step=_next_step(
            cfg.name, handle.kind, status, rented=handle.host.kind != "local", resumable=point is not None
        ),
    )
    if status.memory_exhausted and handle.kind == "training":  # resuming as it is would run out of memory again
        request = (await read_gates(store, cfg.name)).plan_request
        following = (await find_versions(store, cfg.name)).next_name
        result.next_step = out_of_memory_advice(cfg, cfg.name, request, new_version=following)
    result.time_left = time_left(status, progress)
    if result.time_left is not None:
        result.next_step = (
            f"Still running, {result.time_left.words} left: check again later with training_status (it keeps "
            "running if this conversation ends)."
        )
    result.stall = find_stall(status, progress, threshold_seconds=stall_seconds, name=cfg.name)
    result.cost = await run_cost(
        store,
        handle,
        status,
        now=now or datetime.now(UTC),
        seconds_left=result.time_left.seconds if result.time_left else None,
    )
    if handle.kind == "training":
        result.notices = await write_records(store, cfg.name, {"progress.md": render_progress_md(cfg.name, result)})
        await _remember(store, cfg.name, handle, status, newly_seen)
        if status.finished:
            await record_training_outcome(
                store, cfg.name, state=_outcome(status.state), host=handle.host.identity,
                config_hash=handle.config_hash, started_at=handle.started_at, at=now or datetime.now(UTC),
                message=status.message, step=status.step, total_steps=status.total_steps,
                resume_from_step=point.step if point is not None else None,
            )  # fmt: skip
    return result


def _outcome(state: SupervisorState) -> TrainingOutcome:
    if state == "succeeded" or state == "failed" or state == "stopped":
        return state
    return "lost"  # it ended without saying how


async def _remember(
    store: GrimoireStore, name: str, handle: RunHandle, status: SupervisorStatus, newly_seen: list[str]
) -> None:
    """Keep in the run's record how it ended, the batch it really ran at, and which samples were shown."""
    changes: dict[str, object] = {}
    if status.finished and not handle.finished:
        changes.update(finished=True, final_state=status.state)  # dry runs are closed by train_dry_run only
    if status.batch_size and (status.batch_size, status.gradient_accumulation) != (
        handle.batch_size,
        handle.gradient_accumulation,
    ):
        changes.update(batch_size=status.batch_size, gradient_accumulation=status.gradient_accumulation)
    if status.savers != handle.memory_savers and status.state != "missing":
        changes.update(memory_savers=list(status.savers))
    if not changes and not newly_seen:
        return
    async with update_execution(store, name) as upd:
        current = upd.doc.training
        if current is not None and current.run_dir == handle.run_dir:
            seen = current.samples_seen + [n for n in newly_seen if n not in current.samples_seen]
            upd.doc.training = current.model_copy(update={**changes, "samples_seen": seen})
