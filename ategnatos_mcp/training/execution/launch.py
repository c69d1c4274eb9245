"""Launch the real run: only when all four gates hold for this exact dataset, config and host."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import anyio.to_thread
from pydantic import BaseModel, Field

from ategnatos_mcp.dataset import dataset_fingerprint
from ategnatos_mcp.errors import AtegnatosError, InvalidRequestError, StateError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import (
    find_versions,
    launch_blockers,
    read_gates,
    record_training_outcome,
    record_training_started,
    relaunch_refusal,
    write_records,
)
from ategnatos_mcp.training.execution.hosts import TrainingHost
from ategnatos_mcp.training.execution.models import RunHandle, RunKind, SupervisorStatus
from ategnatos_mcp.training.execution.plans import ConfirmedPlan, read_execution, update_execution
from ategnatos_mcp.training.execution.resume import (
    ResumePoint,
    find_resume_point,
    leftover_saves,
    saves_after,
    set_aside_saves,
)
from ategnatos_mcp.training.execution.runner import (
    host_dataset_dir,
    host_label,
    never_started,
    read_status,
    start_run,
)

__all__ = ["LaunchResult", "check_start_choice", "ensure_launch_ready", "launch_run"]

_MAX_HALVINGS = 3
_HANG_SECONDS = 900.0  # no output for 15 minutes after an OOM: the job is stuck


class LaunchResult(BaseModel):
    """A started (or, with action 'stop', stopped) run and the handle training_status uses to find it again."""

    name: str
    host: str
    action: Literal["start", "stop"] = "start"
    kind: RunKind = "training"
    handle: RunHandle
    status: SupervisorStatus
    resume: str = Field(default="", description="After a stop: where a resume would continue from, in words.")
    resume_from_step: int | None = Field(default=None, description="After a stop: the step a resume continues from.")
    next_step: str = ""
    resumed_from_step: int | None = None
    batch_size: int | None = Field(default=None, description="The batch size it starts at.")
    gradient_accumulation: int | None = Field(default=None, description="The gradient accumulation it starts at.")
    notices: list[str]


def _fingerprint(path: Path) -> str | None:
    try:
        return dataset_fingerprint(path)
    except AtegnatosError:
        return None


async def ensure_launch_ready(
    store: GrimoireStore, plan: ConfirmedPlan, identity: str, *, resume: bool = False, fresh: bool = False
) -> None:
    """Refuse unless gates 1-4 hold for this dataset (as it is now), this config and this host, and refuse starting
    a trained run again: a finished one at all, a stopped or failed one except to resume it.

    Raises:
        InvalidRequestError: naming each missing or stale gate and why, or what to do with the trained run.
    """
    cfg = plan.cfg
    doc = await read_gates(store, cfg.name)
    record = doc.training_run
    if record is not None and record.state != "running" and (fresh or not resume or record.state == "succeeded"):
        raise relaunch_refusal(doc, await find_versions(store, cfg.name), resume=resume, fresh=fresh)
    fingerprint = await anyio.to_thread.run_sync(_fingerprint, Path(cfg.dataset_path))
    blockers = launch_blockers(
        doc, dataset_fingerprint=fingerprint or "(dataset missing)", config_hash=cfg.config_hash, host=identity
    )
    if blockers and record is not None:
        versions = await find_versions(store, cfg.name)
        raise InvalidRequestError(
            f"'{cfg.name}' cannot be resumed on {identity}: a resume continues the very same run, and something its "
            "gates checked is no longer the same. " + " ".join(blockers),
            hint=f"Put it back as it was (the same dataset, settings and host), or train on what changed as a new "
            f"version: train_plan with name='{cfg.name}' plans '{versions.next_name}'.",
        )
    if blockers:
        raise InvalidRequestError(
            f"'{cfg.name}' cannot be launched on {identity} yet. " + " ".join(blockers),
            hint="Pass the gates in order, each with the call named above, for this exact dataset, configuration "
            "and host; then launch again.",
        )


def check_start_choice(*, resume: bool, fresh: bool) -> None:
    """Refuse asking for both a resume and a fresh start (checked before anything else, even the gates)."""
    if resume and fresh:
        raise InvalidRequestError(
            "resume=true continues the earlier run and fresh=true starts from step 0: choose one.",
            hint="Call launch_training again with only one of them.",
        )


async def launch_run(
    host: TrainingHost,
    store: GrimoireStore,
    plan: ConfirmedPlan,
    *,
    backend_dir: str,
    now: datetime,
    report: Progress | None = None,
    env: dict[str, str] | None = None,
    resume: bool = False,
    fresh: bool = False,
) -> LaunchResult:
    """Check the gates, start the supervisor detached, record the run (here and in the gates), write progress.md.

    A run is started once: after it ended, only ``resume`` (a stopped, failed or lost run) starts it again.

    Raises:
        InvalidRequestError: a gate is missing or stale (the message names each one and why).
        StateError: a training run of this plan is still going.
        InvalidRequestError: also when the run already ran (finished; or stopped or failed without ``resume``),
            when a resume cannot be done honestly (no state, other config or host), when a first launch would
            write over files already in its output folder, or when both ``resume`` and ``fresh`` are asked for.
    """
    cfg, identity = plan.cfg, host.spec.identity
    check_start_choice(resume=resume, fresh=fresh)
    await ensure_launch_ready(store, plan, identity, resume=resume, fresh=fresh)
    previous = await _earlier_run(host, store, cfg.name)
    if previous is not None:
        ended = await _earlier_run_ended(host, store, plan, previous, now)
        if fresh or not resume or ended == "succeeded":
            doc = await read_gates(store, cfg.name)
            raise relaunch_refusal(doc, await find_versions(store, cfg.name), resume=resume, fresh=fresh)
    elif (await read_gates(store, cfg.name)).training_run is not None:
        raise StateError(
            f"A training run of '{cfg.name}' was started, but what this computer knew about it is missing.",
            hint=f"Plan a new version to train again: train_plan with name='{cfg.name}'.",
        )
    point, batch, notes = await _starting_point(host, plan, previous, resume=resume, fresh=fresh, now=now)
    rung = len(batch[2]) if batch is not None else 0
    dataset_dir = await host_dataset_dir(host, cfg)
    if host.spec.kind != "local":
        # Only changed files travel; the fingerprint above proved the local copy is the audited one.
        await host.put_dataset(Path(cfg.dataset_path), dataset_dir, report)  # type: ignore[arg-type]

    async def record(handle: RunHandle) -> RunHandle:
        # Recorded before the supervisor starts (under the start claim): a server killed from here on leaves a run
        # training_status follows and a relaunch refuses, never a trainer nobody knows about beside a second one.
        if point is not None:
            handle = handle.model_copy(update={"resumed_from_step": point.step, "resumed_from": point.source})
        if (
            not fresh
            and previous is not None
            and (previous.host, previous.output_dir) == (host.spec, handle.output_dir)
        ):
            handle.samples_seen = list(previous.samples_seen)  # the earlier run's sample images are not new
        async with update_execution(store, cfg.name) as upd:
            upd.doc.name = cfg.name
            if upd.doc.training is not None:
                upd.doc.history.append(upd.doc.training)
                del upd.doc.history[:-20]
            upd.doc.training = handle
        return handle

    handle = await start_run(
        host,
        kind="training",
        cfg=cfg,
        backend=plan.backend,
        backend_dir=backend_dir,
        dataset_dir=dataset_dir,
        now=now,
        max_halvings=_MAX_HALVINGS,
        hang_seconds=_HANG_SECONDS,
        env=env,
        extra_args=point.args if point else None,
        batch=batch[:2] if batch is not None else None,
        start_rung=rung,
        before_start=record,
    )
    await record_training_started(
        store, cfg.name, host=identity, config_hash=cfg.config_hash, started_at=now, resumed=point is not None
    )
    status = await read_status(host, handle)
    text = (
        f"# {cfg.name}: training progress\n\nStarted {now:%Y-%m-%d %H:%M} UTC on {identity} "
        f"({plan.backend}, config {cfg.config_hash}, {cfg.total_steps} steps planned).\n\n"
        + (f"Resumed from step {point.step} ({point.source}).\n\n" if point else "")
        + (f"Batch size {batch[0]}, gradient accumulation {batch[1]} (what fit before).\n\n" if batch else "")
        + (f"Memory savers on (what fit before): {', '.join(batch[2])}.\n\n" if batch and batch[2] else "")
        + f"Supervisor folder on the host: {handle.run_dir}\n\nAsk training_status for progress.\n"
    )
    notices = notes + await write_records(store, cfg.name, {"progress.md": text})
    return LaunchResult(
        name=cfg.name,
        host=identity,
        handle=handle,
        status=status,
        resumed_from_step=point.step if point else None,
        batch_size=handle.batch_size,
        gradient_accumulation=handle.gradient_accumulation,
        notices=notices,
    )


async def _earlier_run(host: TrainingHost, store: GrimoireStore, name: str) -> RunHandle | None:
    """The training run recorded for ``name``; a start recorded but cut short before its supervisor ran (a server
    killed in between) is forgotten here, and the run recorded before it stands again."""
    state = await read_execution(store, name)
    cut = state.training
    if cut is None or cut.finished or not await never_started(host, cut):
        return cut
    async with update_execution(store, name) as upd:
        if upd.doc.training is not None and upd.doc.training.run_dir == cut.run_dir:
            upd.doc.training = upd.doc.history.pop() if upd.doc.history else None
        return upd.doc.training


async def _earlier_run_ended(
    host: TrainingHost, store: GrimoireStore, plan: ConfirmedPlan, previous: RunHandle, now: datetime
) -> str:
    """How the earlier training run of this version ended, kept in its gates; refuses while it still runs."""
    status = None
    if not previous.finished:
        status = await read_status(host, previous) if previous.host == host.spec else None
        if status is None or not status.finished:
            raise StateError(
                f"A training run of '{plan.cfg.name}' is still going on {host_label(previous.host)}, started "
                f"{previous.started_at:%Y-%m-%d %H:%M} UTC (perhaps from another conversation); nothing was started "
                "twice.",
                document=previous.run_dir,
                hint=f"Follow it with training_status(name='{plan.cfg.name}'), or stop it first: "
                f"launch_training(name='{plan.cfg.name}', action='stop').",
            )
    ended = previous.final_state or (status.state if status is not None else "lost")
    if status is not None or (await read_gates(store, plan.cfg.name)).training_run is None:
        point = await find_resume_point(host, previous, plan.cfg) if previous.host == host.spec else None
        await record_training_outcome(
            store, plan.cfg.name, state=ended if ended in _ENDINGS else "lost", host=previous.host.identity,
            config_hash=previous.config_hash, started_at=previous.started_at, at=now,
            message=status.message if status is not None else "", step=status.step if status is not None else 0,
            total_steps=status.total_steps if status is not None else None,
            resume_from_step=point.step if point is not None and ended != "succeeded" else None,
        )  # fmt: skip
    return ended


_ENDINGS = ("succeeded", "failed", "stopped", "lost")


async def _starting_point(
    host: TrainingHost, plan: ConfirmedPlan, previous: RunHandle | None, *, resume: bool, fresh: bool, now: datetime
) -> tuple[ResumePoint | None, tuple[int, int, list[str]] | None, list[str]]:
    """Where the new run starts: the save it continues from, the batch and memory savers to run with (None: the
    plan's), and notes.

    A first launch never writes over files already in the output folder (refused; ``fresh`` moves them aside);
    a resume moves aside any save newer than the state it continues from (the resumed run would write it again).
    """
    cfg = plan.cfg
    base = await host.base_dir(cfg.name)
    if not resume:
        leftovers = await leftover_saves(host, base)
        if leftovers and not fresh:
            shown = ", ".join(leftovers[:5]) + (f" and {len(leftovers) - 5} more" if len(leftovers) > 5 else "")
            raise InvalidRequestError(
                f"The output folder of '{cfg.name}' on {host.spec.identity} already holds files no recorded run of "
                f"it made ({shown}); training would write over them or continue from them.",
                hint="Launch with fresh=true to move them into a dated folder first (nothing is deleted), or plan "
                "the training under another name.",
            )
        if not fresh:
            return None, None, []
        moved = await set_aside_saves(host, base, now)
        note = (
            f"Fresh start: the earlier saves were moved (not deleted) to {moved}."
            if moved
            else "Fresh start: there were no earlier saves to move aside."
        )
        return None, None, [note]
    notes: list[str] = []
    point = await _resume_point(host, plan, previous)
    assert previous is not None  # _resume_point refuses without one
    later = await saves_after(host, previous, cfg, point)
    if later:
        moved = await set_aside_saves(host, base, now, entries=later)
        notes.append(
            f"{len(later)} save(s) newer than the state it continues from ({', '.join(later)}) were moved (not "
            f"deleted) to {moved}, so the resumed run cannot write over them."
        )
    fitted = await _fitted(host, previous)
    if fitted is None:
        return point, None, notes
    batch, savers = (fitted[0], fitted[1]), fitted[2]
    if savers:
        notes.append(
            f"The earlier run only fit with {', '.join(savers)} switched on by the out-of-memory ladder; this run "
            "continues with them on."
        )
    if batch == (cfg.batch_size, cfg.gradient_accumulation):
        return point, ((*batch, savers) if savers else None), notes
    notes.append(
        f"The earlier run only fit at batch size {batch[0]} with gradient accumulation {batch[1]} (the "
        f"out-of-memory ladder reduced it from {cfg.batch_size}); this run continues at that batch (same "
        "effective batch) instead of running out of memory again."
    )
    return point, (*batch, savers), notes


async def _fitted(host: TrainingHost, previous: RunHandle) -> tuple[int, int, list[str]] | None:
    """The batch, accumulation and memory savers the earlier run really ran with (its OOM ladder may have reduced
    the plan's batch and switched savers on)."""
    if previous.host == host.spec:
        status = await read_status(host, previous)
        if status.state != "missing" and status.batch_size and status.gradient_accumulation:
            return status.batch_size, status.gradient_accumulation, status.savers
    if previous.batch_size and previous.gradient_accumulation:
        return previous.batch_size, previous.gradient_accumulation, previous.memory_savers
    return None


async def _resume_point(host: TrainingHost, plan: ConfirmedPlan, previous: RunHandle | None) -> ResumePoint:
    """The saved state an unfinished earlier run of this exact config on this host left, or a plain refusal."""
    cfg, identity = plan.cfg, host.spec.identity
    if previous is None:
        raise InvalidRequestError(
            f"There is no earlier training run of '{cfg.name}' to resume.",
            hint="Launch it without resume to start from the beginning.",
        )
    if previous.host != host.spec:
        raise InvalidRequestError(
            f"The earlier run of '{cfg.name}' ran on {previous.host.identity}, not {identity}: "
            "its saved state is not on this machine.",
            hint=f"Resume it on {previous.host.identity}, or launch here without resume to start from the beginning.",
        )
    if previous.config_hash != cfg.config_hash or previous.backend != plan.backend:
        raise InvalidRequestError(
            f"The configuration of '{cfg.name}' changed since the earlier run (it used config "
            f"{previous.config_hash}, now {cfg.config_hash}); a saved state only continues the exact same settings.",
            hint="Launch without resume to train the new configuration from the beginning.",
        )
    ended = previous.final_state or (await read_status(host, previous)).state
    if ended == "succeeded":
        raise InvalidRequestError(
            f"The earlier run of '{cfg.name}' finished: there is nothing to resume.",
            hint="Evaluate its LoRA files with train_evaluate, or launch without resume to train again.",
        )
    point = await find_resume_point(host, previous, cfg)
    if point is None:
        saves = {
            "kohya": "a training state (saved with each kept epoch)",
            "simpletuner": "a checkpoint folder",
            "ai-toolkit": "a saved step",
        }
        raise InvalidRequestError(
            f"The earlier run of '{cfg.name}' stopped before it saved {saves.get(plan.backend, 'a checkpoint')}, "
            "so there is nothing to continue from: it would start again at step 0.",
            hint="Launch without resume to start from the beginning.",
        )
    return point
