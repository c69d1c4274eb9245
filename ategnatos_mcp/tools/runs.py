"""MCP adapter for running training: environment check (gate 3), dry run (gate 4), launch, status
(the evaluation of a run: tools/evaluation.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.tools._common import ImagePart, app_of, guard, progress_reporter, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.training.execution import (
    DryRunResult,
    EnvironmentCheck,
    LaunchResult,
    RunReport,
    TrainingRuns,
)
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]

HostArg = Annotated[
    str,
    Field(description="'local', an instance from gpu_instances, or user@host:port."),
]
NameArg = Annotated[str, Field(description="The training run (the name used with train_plan).")]


@guard
async def train_validate_environment(
    ctx: Context[Wiring],
    name: NameArg,
    host: HostArg = "local",
    backend_dir: Annotated[
        str | None,
        Field(description="The trainer's folder on that host (default ~/sd-scripts, ~/ai-toolkit)."),
    ] = None,
    upload_dataset: Annotated[
        bool, Field(description="Send the dataset to the SSH host first (only new or changed files travel).")
    ] = False,
    wait_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=240,
            description="Wait this long for an upload before answering (it goes on).",
        ),
    ] = 45.0,
) -> Annotated[CallToolResult, EnvironmentCheck]:
    """Gate 3: check the training host for the confirmed plan (Python, PyTorch and CUDA
    against the driver, GPU memory, disk, trainer, dataset) and record it; every problem comes with its fix.

    upload_dataset=true sends the dataset first; a long upload goes on in the background (a repeat call shows it)."""
    runs = await app_of(ctx).training_runs()
    check = await runs.validate_environment(
        name,
        host,
        backend_dir=backend_dir,
        upload_dataset=upload_dataset,
        wait_seconds=wait_seconds,
        report=progress_reporter(ctx),
    )
    if check.upload is not None and check.upload.state in ("sending", "checking"):
        summary = (
            f"Sending the dataset of '{check.name}' to {check.host}: {check.upload.describe()} so far. It goes on "
            "in the background; the environment check (gate 3) runs by itself once it has arrived. Call "
            "train_validate_environment again (or train_gates) to see where it is."
        )
        return respond(
            check, summary, next_step=f"Call train_validate_environment name='{check.name}' again in a while."
        )
    head = f"Environment on {check.host} is {'ready' if check.passed else 'NOT ready'} for '{check.name}' (gate 3)."
    lines = [head, *(f"- {k}: {v}" for k, v in check.facts.items())]
    lines += [f"Problem: {p}" for p in check.problems] + [f"Note: {w}" for w in check.warnings]
    step = (
        f"Run the short test (gate 4): train_dry_run name='{check.name}' host='{check.host}'."
        if check.passed
        else f"Fix the problems above, then train_validate_environment name='{check.name}' host='{check.host}' again."
    )
    return respond(check, "\n".join(lines), next_step=step)


@guard
async def train_dry_run(
    ctx: Context[Wiring],
    name: NameArg,
    host: HostArg = "local",
    wait_seconds: Annotated[
        float, Field(ge=0, le=240, description="How long to wait for it before handing back (it keeps running).")
    ] = 45.0,
    steps: Annotated[int, Field(description="Training steps of the dry run: 2 to 5 (default 3), then one save.")] = 3,
) -> Annotated[CallToolResult, DryRunResult]:
    """Gate 4: a short run (3 steps by default, one save) of the confirmed config on the host; it passes
    when the trainer reaches its steps and saves with no error. Still running: call again (never starts twice)."""
    runs = await app_of(ctx).training_runs()
    result = await runs.dry_run(name, host, wait_seconds=wait_seconds, report=progress_reporter(ctx), steps=steps)
    status = result.status
    if result.state == "running":
        summary = (
            f"Dry run of '{result.name}' on {result.host} is running (step {status.step} of "
            f"{status.total_steps or '?'}). Call train_dry_run again to follow it."
        )
    elif result.passed:
        summary = f"Dry run of '{result.name}' passed on {result.host} (gate 4). launch_training can start the run."
    else:
        summary = "\n".join(
            [f"Dry run of '{result.name}' FAILED on {result.host}:", *(f"- {p}" for p in result.problems)]
        )
    return respond(result, summary)


@guard
async def launch_training(
    ctx: Context[Wiring],
    name: NameArg,
    host: HostArg = "local",
    resume: Annotated[
        bool,
        Field(
            description="Continue this stopped or failed run from its last saved state (same host; its saves are kept)."
        ),
    ] = False,
    fresh: Annotated[
        bool,
        Field(
            description="First launch only: move files already in the output folder aside (never deleted) and start at step 0."
        ),
    ] = False,
    action: Annotated[
        Literal["start", "stop"],
        Field(description="start (default) or stop (saves kept; resumable)."),
    ] = "start",
) -> Annotated[CallToolResult, LaunchResult]:
    """Start the real training run, detached under a supervisor that survives dropped connections, only
    when all four gates passed; or stop it (action='stop').

    A run starts once: a finished run is refused (evaluate it, or plan a new version); a stopped or failed one
    only resumes (resume=true) from its last saved state without touching its saves. Out of memory: smaller
    batches, then the trainer's memory savers one at a time. Follow it with training_status."""
    runs = await app_of(ctx).training_runs()
    if action == "stop":
        return await _stop(runs, name, resume=resume, fresh=fresh)
    result = await runs.launch(name, host, report=progress_reporter(ctx), resume=resume, fresh=fresh)
    how = "started" if result.resumed_from_step is None else f"resumed from step {result.resumed_from_step}"
    summary = (
        f"Training of '{result.name}' {how} on {result.host} (supervisor pid {result.status.pid}). "
        "It keeps running if this conversation ends; follow it with training_status."
    )
    return respond(result, "\n".join([summary, *result.notices]))


async def _stop(runs: TrainingRuns, name: str, *, resume: bool, fresh: bool) -> CallToolResult:
    if resume or fresh:
        raise InvalidRequestError(
            "action='stop' ends the run; resume and fresh belong to starting one: choose one.",
            hint=f"Stop it with launch_training(name='{name}', action='stop'), then start it again if you want.",
        )
    report, handle, stopped = await runs.stop(name)
    what = "Dry run" if report.kind == "dry_run" else "Training"
    done = (
        f"{what} of '{report.name}' on {report.host} stopped at step {report.status.step} of "
        f"{report.status.total_steps or '?'}."
        if stopped
        else f"{what} of '{report.name}' had already ended ({report.state}); nothing was stopped."
    )
    result = LaunchResult(
        name=report.name, host=report.host, action="stop", kind=report.kind, handle=handle,  # type: ignore[arg-type]
        status=report.status, resume=report.resume, resume_from_step=report.resume_from_step,
        next_step=report.next_step, notices=report.notices,
    )  # fmt: skip
    return respond(result, "\n".join([done, f"Resume: {report.resume}", *report.notices]))


def _report_summary(report: RunReport) -> str:
    status = report.status
    what = "Dry run" if report.kind == "dry_run" else "Training"
    lines = [
        f"{what} of '{report.name}' on {report.host}: {report.state}"
        + (f" ({status.message})" if status.message else "")
        + f", step {status.step} of {status.total_steps or '?'}"
        + (f", epoch {status.epoch}/{status.total_epochs}" if status.epoch else "")
        + (f", loss {report.progress.loss:g}" if report.progress.loss is not None else "")
        + "."
    ]
    if status.savers:
        lines.append(f"Memory savers switched on after running out of memory: {', '.join(status.savers)}.")
    if report.checkpoints:
        lines.append(
            "Saved: "
            + ", ".join(
                f"{c.file.rsplit('/', 1)[-1]} ({'final' if c.kind == 'final' else f'epoch {c.epoch}' if c.epoch else f'step {c.step}'})"
                for c in report.checkpoints
            )
        )
    samples = report.samples
    if samples.total:
        newest = samples.samples[0]
        lines.append(
            f"Sample images: {samples.total} ({samples.new} new"
            + (f", {samples.waiting} still to fetch from the host" if samples.waiting else "")
            + f"); newest at step {newest.step}"
            + (f", prompt: {newest.prompt!r}" if newest.prompt is not None else "")
            + "."
        )
    if report.time_left is not None:
        basis = {"trainer": "the trainer's own estimate", "rate": "its speed", "average": "its pace so far"}
        lines.append(f"Time left: {report.time_left.words} (from {basis[report.time_left.basis]}).")
    if report.cost is not None:
        lines.append(f"Cost: {report.cost.words}")
    if report.stall is not None:
        lines.append(f"Warning: {report.stall.warning}")
    lines += [f"Problem: {p.meaning} Fix: {p.fix}" for p in report.problems[:3]]
    lines += [f"Resume: {report.resume}", *report.notices]
    if report.log_tail:
        lines += ["Log tail:", report.log_tail]
    return "\n".join(lines)


@guard
async def training_status(
    ctx: Context[Wiring],
    name: NameArg,
    run: Annotated[Literal["training", "dry_run"], Field(description="Which run to look at.")] = "training",
    wait_seconds: Annotated[
        float, Field(ge=0, le=240, description="Wait up to this long for it to finish (0: answer at once).")
    ] = 0.0,
    log_lines: Annotated[int, Field(ge=0, le=200, description="Also return the last N lines of the log.")] = 0,
    previews: Annotated[
        int,
        Field(
            ge=0, le=8, description="Show up to this many of the new sample images as small previews (newest first)."
        ),
    ] = 4,
) -> Annotated[CallToolResult, RunReport]:
    """Where a started run stands: step, epoch, loss, time left, cost on a rented GPU, out-of-memory
    retries, saves per epoch, errors with fixes, a warning when the log stops moving, sample images as previews.
    Works after a dropped connection. Only reads: stop with launch_training action='stop'."""
    runs = await app_of(ctx).training_runs()
    report, shown = await runs.status_with_previews(
        name,
        kind=run,
        wait_seconds=wait_seconds,
        log_lines=log_lines,
        previews=previews,
        report=progress_reporter(ctx),
        stall_seconds=app_of(ctx).settings.training.stall_minutes * 60,
    )
    images = [ImagePart(data=p.data, mime_type=p.mime_type, label=f"sample image {p.file}") for p in shown]
    return respond(report, _report_summary(report), images=images)


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register the training-run tools."""
    add_tool(
        server,
        train_validate_environment,
        name="train_validate_environment",
        title="Check the training machine (gate 3)",
        idempotent=True,
        open_world=True,
    )
    add_tool(server, train_dry_run, name="train_dry_run", title="Dry run of the training (gate 4)", open_world=True)
    add_tool(server, launch_training, name="launch_training", title="Start or stop the training run", open_world=True)
    add_tool(
        server,
        training_status,
        name="training_status",
        title="Progress of a training run",
        read_only=True,
        open_world=True,
    )
