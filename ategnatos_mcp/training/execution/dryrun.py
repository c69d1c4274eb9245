"""Gate 4: the dry-run variant of the confirmed config (a few steps, no samples, one save) under the supervisor.

It passes when the trainer reaches its steps and writes its one save with no error signature in the log,
at the planned batch size (a run that only fit after halving the batch fails, with the batch that fit).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import GateState, record_dry_run_gate
from ategnatos_mcp.training.calls import environment_call
from ategnatos_mcp.training.execution.hosts import TrainingHost
from ategnatos_mcp.training.execution.ladder import out_of_memory_advice, replan_call
from ategnatos_mcp.training.execution.models import RunHandle, SupervisorStatus, TrainingProgress
from ategnatos_mcp.training.execution.monitor import WARNING_IDS
from ategnatos_mcp.training.execution.plans import ConfirmedPlan, claim_start, read_execution, update_execution
from ategnatos_mcp.training.execution.runner import (
    host_dataset_dir,
    never_started,
    parse_run_log,
    read_log_tail,
    start_run,
    stop_run,
    wait_for_run,
)
from ategnatos_mcp.training.models import DRY_RUN_STEP_RANGE, DRY_RUN_STEPS

__all__ = ["DryRunResult", "check_dry_run_steps", "judge_dry_run", "run_dry_run"]

_DRY_RUN_HANG_SECONDS = 300.0


class DryRunResult(BaseModel):
    """Where the dry run stands; ``passed`` is None while it still runs."""

    name: str
    host: str
    state: Literal["running", "passed", "failed"]
    passed: bool | None
    problems: list[str] = Field(default_factory=list)
    status: SupervisorStatus
    progress: TrainingProgress
    log_tail: str = Field(default="", description="The last lines of the trainer's log.")
    gates: GateState | None = None


def check_dry_run_steps(steps: int) -> int:
    """``steps`` when it is a dry run's length (2-5 steps, as the seed's gate 4 asks).

    Raises:
        InvalidRequestError: any other number.
    """
    low, high = DRY_RUN_STEP_RANGE
    if not low <= steps <= high:
        raise InvalidRequestError(
            f"A dry run takes {low} to {high} training steps; {steps} was asked for. It only has to prove that the "
            "model and the images load and that a step and a save work, so a few steps are enough, and each one "
            "costs GPU time.",
            hint=f"Call train_dry_run again with steps between {low} and {high}, or leave steps out ({DRY_RUN_STEPS}).",
        )
    return steps


def judge_dry_run(status: SupervisorStatus, progress: TrainingProgress, plan: ConfirmedPlan | None = None) -> list[str]:
    """Why a finished dry run does not pass (empty: it passed). With ``plan``, a run that only fit with a smaller
    batch or memory savers names the exact train_plan call that plans what fit."""
    problems: list[str] = []
    name = plan.cfg.name if plan is not None else ""
    request = plan.gates.plan_request if plan is not None else None
    if len(status.attempts) > 1 and status.state == "succeeded":
        first = status.attempts[0]
        overrides = {
            **status.saver_overrides,
            "batch_size": status.batch_size,
            "gradient_accumulation": status.gradient_accumulation,
        }
        savers = f" and with {', '.join(status.savers)} switched on" if status.savers else ""
        problems.append(
            f"It ran out of graphics memory at batch size {first['batch_size']} and only fit at batch size "
            f"{status.batch_size} with gradient accumulation {status.gradient_accumulation}{savers}. Re-plan with "
            f"overrides {overrides} and confirm again"
            + (f": {replan_call(name, request, overrides)}." if plan is not None else ".")
        )
    elif status.state != "succeeded":
        problems.append(status.message or f"The dry run ended as {status.state}.")
        if status.memory_exhausted and plan is not None:
            problems.append(out_of_memory_advice(plan.cfg, name, request))
    if status.state == "succeeded" and progress.total_steps and progress.step < progress.total_steps:
        problems.append(f"It stopped at step {progress.step} of {progress.total_steps}.")
    if status.state == "succeeded" and not progress.checkpoints:
        problems.append("It wrote no LoRA file, so saving does not work with this configuration.")
    problems += [f"{e.meaning} Fix: {e.fix}" for e in progress.errors if e.id not in WARNING_IDS]
    return problems


async def run_dry_run(
    host: TrainingHost,
    store: GrimoireStore,
    plan: ConfirmedPlan,
    *,
    backend_dir: str,
    wait_seconds: float,
    now: datetime,
    report: Progress | None = None,
    env: dict[str, str] | None = None,
    steps: int = DRY_RUN_STEPS,
) -> DryRunResult:
    """Start (or re-attach to) the dry run on ``host``, follow it for ``wait_seconds``, record gate 4 when done.

    Raises:
        InvalidRequestError: gate 3 has not passed on this host, or ``steps`` is not 2-5.
    """
    check_dry_run_steps(steps)
    cfg, identity = plan.cfg, host.spec.identity
    env_gate = plan.gates.environment
    if env_gate.status != "passed" or env_gate.host != identity:
        raise InvalidRequestError(
            f"The environment on {identity} has not passed its check for '{cfg.name}' (gate 3).",
            hint=f"Check it first: {environment_call(cfg.name, identity)}.",
        )
    # One start at a time across every server on this project: another conversation's dry run is followed, never
    # started a second time beside it.
    async with claim_start(store, cfg.name, "dry_run"):
        handle = (await read_execution(store, cfg.name)).dry_run
        cut = handle is not None and not handle.finished and await never_started(host, handle)  # a killed start
        if (
            handle is None
            or handle.finished
            or cut
            or handle.config_hash != cfg.config_hash
            or handle.host != host.spec
        ):
            if handle is not None and not handle.finished and not cut and handle.host == host.spec:
                await stop_run(host, handle)  # a dry run of an older config: it no longer proves anything
            handle = await start_run(
                host,
                kind="dry_run",
                cfg=cfg,
                backend=plan.backend,
                backend_dir=backend_dir,
                dataset_dir=await host_dataset_dir(host, cfg),
                now=now,
                hang_seconds=_DRY_RUN_HANG_SECONDS,
                env=env,
                dry_run_steps=steps,
                before_start=functools.partial(_save, store, cfg.name),  # recorded first: see launch_run
            )
    status = await wait_for_run(host, handle, wait_seconds, report)
    log = await read_log_tail(host, handle)
    progress = await parse_run_log(handle, log)
    tail = "\n".join(log.replace("\r", "\n").splitlines()[-20:])
    if not status.finished:
        return DryRunResult(
            name=cfg.name, host=identity, state="running", passed=None, status=status, progress=progress, log_tail=tail
        )
    problems = judge_dry_run(status, progress, plan)
    gates = await record_dry_run_gate(
        store, cfg.name, host=identity, config_hash=cfg.config_hash, passed=not problems, log_tail=log[-4000:]
    )
    await _save(store, cfg.name, handle.model_copy(update={"finished": True, "final_state": status.state}))
    return DryRunResult(
        name=cfg.name,
        host=identity,
        state="failed" if problems else "passed",
        passed=not problems,
        problems=problems,
        status=status,
        progress=progress,
        log_tail=tail,
        gates=gates,
    )


async def _save(store: GrimoireStore, name: str, handle: RunHandle) -> RunHandle:
    async with update_execution(store, name) as upd:
        upd.doc.name = name
        upd.doc.dry_run = handle
    return handle
