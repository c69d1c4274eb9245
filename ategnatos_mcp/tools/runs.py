"""MCP adapter for running training: environment check (gate 3), dry run (gate 4), launch, status
(the evaluation of a run: tools/evaluation.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from ategnatos_mcp.context import AppContext
from ategnatos_mcp.tools._common import ImagePart, app_of, guard, progress_reporter, respond
from ategnatos_mcp.training.execution import (
    DryRunResult,
    EnvironmentCheck,
    HostRegistry,
    LaunchResult,
    RunReport,
    TrainingRuns,
)

__all__ = ["register", "training_runs"]

HOSTS_SERVICE = "training-hosts"
RUNS_SERVICE = "training-runs"

HostArg = Annotated[
    str,
    Field(
        description="Where to train: 'local' (this machine), a GPU instance name from gpu_instances, or user@host:port."
    ),
]
NameArg = Annotated[str, Field(description="The training run (the name used with train_plan).")]


async def training_runs(app: AppContext) -> TrainingRuns:
    """The server's training-run service (hosts from the ``training-hosts`` service, which tests may pre-load)."""

    async def build_hosts(a: AppContext) -> HostRegistry:
        async def connector():  # type: ignore[no-untyped-def]
            from ategnatos_mcp.remote import SSHConnector

            async def build(b: AppContext) -> SSHConnector:
                return SSHConnector.from_settings(b.settings)

            return await a.service("ssh", build)

        return HostRegistry(a.settings.workspace_dir / "training", connector)

    hosts = await app.service(HOSTS_SERVICE, build_hosts)  # not inside the other factory: the lock is not reentrant

    async def build(a: AppContext) -> TrainingRuns:
        return TrainingRuns(a.store, hosts, a.clock, a.task_group)

    return await app.service(RUNS_SERVICE, build)


@guard
async def train_validate_environment(
    ctx: Context[AppContext],
    name: NameArg,
    host: HostArg = "local",
    backend_dir: Annotated[
        str | None,
        Field(description="Folder of the trainer's checkout on that host (default ~/sd-scripts or ~/ai-toolkit)."),
    ] = None,
    upload_dataset: Annotated[
        bool, Field(description="Send the dataset to the SSH host first (only new or changed files travel).")
    ] = False,
    wait_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=240,
            description="How long to wait for a dataset upload before answering with its progress (it goes on "
            "in the background).",
        ),
    ] = 45.0,
) -> Annotated[CallToolResult, EnvironmentCheck]:
    """Gate 3: check the training host for the confirmed plan and record the result.

    Checks Python, PyTorch with CUDA, the GPU and its free memory against the plan's estimate, free disk,
    that the trainer is installed, and that the dataset is on the host. Every problem comes back in plain words
    with what to do. Needs gate 2 (train_confirm). Then run train_dry_run on the same host.

    With upload_dataset=true a long upload goes on in the background after wait_seconds: the answer gives the
    progress so far, and a repeat call (or train_gates) shows it; the check runs by itself once the files are
    there. Nothing is sent twice.
    """
    runs = await training_runs(app_of(ctx))
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
        return respond(check, summary)
    head = f"Environment on {check.host} is {'ready' if check.passed else 'NOT ready'} for '{check.name}' (gate 3)."
    lines = [head, *(f"- {k}: {v}" for k, v in check.facts.items())]
    lines += [f"Problem: {p}" for p in check.problems] + [f"Note: {w}" for w in check.warnings]
    lines.append("Next: train_dry_run on this host." if check.passed else "Fix the problems, then check again.")
    return respond(check, "\n".join(lines))


@guard
async def train_dry_run(
    ctx: Context[AppContext],
    name: NameArg,
    host: HostArg = "local",
    wait_seconds: Annotated[
        float, Field(ge=0, le=240, description="How long to wait for it before handing back (it keeps running).")
    ] = 45.0,
) -> Annotated[CallToolResult, DryRunResult]:
    """Gate 4: run the dry-run variant of the confirmed config (a few steps, one save) on the host.

    Passes when the trainer reaches its steps and writes its one save with no error in the log. If it is
    still running after wait_seconds, call again (it re-attaches, never starts twice). Needs gate 3 on that host.
    """
    runs = await training_runs(app_of(ctx))
    result = await runs.dry_run(name, host, wait_seconds=wait_seconds, report=progress_reporter(ctx))
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
    ctx: Context[AppContext],
    name: NameArg,
    host: HostArg = "local",
    resume: Annotated[
        bool,
        Field(
            description="Continue an earlier run of this same confirmed configuration on this same host that did "
            "not finish, from its last saved state (refused when nothing was saved or the configuration changed)."
        ),
    ] = False,
    fresh: Annotated[
        bool,
        Field(
            description="Start from step 0 even though an earlier run left saves (SimpleTuner and ai-toolkit would "
            "otherwise continue from them by themselves): the earlier saves are moved, never deleted, into a dated "
            "folder the answer names."
        ),
    ] = False,
) -> Annotated[CallToolResult, LaunchResult]:
    """Start the real training run, detached under the supervisor (it survives a dropped connection).

    With resume=true it continues an interrupted run from the step its last saved state holds (kohya via
    --resume of the saved -state folder, SimpleTuner and ai-toolkit from their newest checkpoint), at the batch
    size the earlier run's out-of-memory ladder reached. With fresh=true it starts from step 0, moving earlier
    saves aside into a dated folder first (nothing is deleted).

    Refuses unless all four gates passed for this exact dataset, configuration and host, naming each gate
    that is missing or stale and why. The supervisor retries CUDA out-of-memory by halving the batch size
    (at most 3 times, same effective batch). Follow it with training_status.
    """
    runs = await training_runs(app_of(ctx))
    result = await runs.launch(name, host, report=progress_reporter(ctx), resume=resume, fresh=fresh)
    how = "started" if result.resumed_from_step is None else f"resumed from step {result.resumed_from_step}"
    summary = (
        f"Training of '{result.name}' {how} on {result.host} (supervisor pid {result.status.pid}). "
        "It keeps running if this conversation ends; follow it with training_status."
    )
    return respond(result, "\n".join([summary, *result.notices]))


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
    lines += [f"Problem: {p.meaning} Fix: {p.fix}" for p in report.problems[:3]]
    lines += [f"Resume: {report.resume}", f"Next: {report.next_step}", *report.notices]
    if report.log_tail:
        lines += ["Log tail:", report.log_tail]
    return "\n".join(lines)


@guard
async def training_status(
    ctx: Context[AppContext],
    name: NameArg,
    run: Annotated[Literal["training", "dry_run"], Field(description="Which run to look at.")] = "training",
    wait_seconds: Annotated[
        float, Field(ge=0, le=240, description="Wait up to this long for it to finish (0: answer at once).")
    ] = 0.0,
    log_lines: Annotated[int, Field(ge=0, le=200, description="Also return the last N lines of the log.")] = 0,
    stop: Annotated[bool, Field(description="Stop the run (the trainer and its supervisor).")] = False,
    previews: Annotated[
        int,
        Field(
            ge=0, le=8, description="Show up to this many of the new sample images as small previews (newest first)."
        ),
    ] = 4,
) -> Annotated[CallToolResult, RunReport]:
    """Where a started run stands: step, epoch, loss, retries after out-of-memory, saved LoRA files with the epoch
    each carries, errors with plain fixes, and where a restart would begin. Re-attaches from the host's status
    file, so it works after a dropped connection or a new conversation. stop=true ends the run.

    Also lists the sample images the trainer made (step, epoch, prompt), copies new ones from an SSH host into the
    workspace, and shows the newest new ones as small previews; each image counts as new once.
    """
    runs = await training_runs(app_of(ctx))
    report, shown = await runs.status_with_previews(
        name,
        kind=run,
        wait_seconds=wait_seconds,
        log_lines=log_lines,
        stop=stop,
        previews=previews,
        report=progress_reporter(ctx),
    )
    images = [ImagePart(data=p.data, mime_type=p.mime_type) for p in shown]
    return respond(report, _report_summary(report), images=images)


def register(server: MCPServer[AppContext], app: AppContext) -> None:
    """Register the training-run tools."""
    server.add_tool(train_validate_environment, name="train_validate_environment")
    server.add_tool(train_dry_run, name="train_dry_run")
    server.add_tool(launch_training, name="launch_training")
    server.add_tool(training_status, name="training_status")
