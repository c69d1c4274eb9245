"""MCP adapter for training plans and gates: train_plan, train_confirm, train_gates, ategnatos://training/{name}."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from ategnatos_mcp.errors import AtegnatosError, ConsentError, InvalidRequestError
from ategnatos_mcp.paths import safe_name
from ategnatos_mcp.tools._common import NoDialog, app_of, client_has_dialog, guard, guard_resource, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.training import (
    PlanRequest,
    RunStatus,
    TrainingPlan,
    build_plan,
    confirm_plan,
    read_gates,
    read_records,
    refuse_if_trained,
    run_status,
)
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]

Backend = Literal["kohya", "simpletuner", "ai-toolkit"]


class ConfirmAnswer(BaseModel):
    """What the artist is asked when the client can show a form."""

    confirm: bool = Field(description="Yes: train with exactly this configuration.")


def _plan_summary(plan: TrainingPlan) -> str:
    cfg, steps, vram = plan.config, plan.steps, plan.vram
    lines = [
        f"Plan '{plan.name}' ({plan.backend}): a {cfg.training_type} LoRA on {cfg.family_info.label}. "
        f"{steps.explanation}",
        f"In {plan.backend}'s terms: {steps.per_backend[plan.backend]}.",
        f"Graphics memory: about {vram.gb:g} GB (range {vram.low_gb:g}-{vram.high_gb:g})"
        + (f"; on your {plan.target_gpu_gb:g} GB card: {plan.fit}." if plan.target_gpu_gb else "."),
    ]
    if plan.savers_applied:
        lines.append(f"Switched on to fit: {', '.join(plan.savers_applied)}.")
    rented = [g for g in plan.gpus if g.usd is not None]
    if rented:
        cheapest = min(rented, key=lambda g: g.usd or 0)
        lines.append(
            f"Cheapest rented GPU that fits: {cheapest.gpu}, about {cheapest.hours:g} h, ~${cheapest.usd:.2f}."
        )
    lines.append(plan.dataset_gate)
    lines.append(
        f"Files in {plan.config_dir}. Config hash {plan.config_hash}: the artist must confirm it (train_confirm)."
    )
    lines += [f"Note: {note}" for note in plan.notes]  # part of what the artist confirms
    lines += plan.notices
    return "\n".join(lines)


@guard
async def train_plan(
    ctx: Context[Wiring],
    name: Annotated[
        str,
        Field(
            description="The LoRA / run name, e.g. 'ink-style'; re-use it to revise (a trained name plans '<name>-v2')."
        ),
    ],
    dataset_path: Annotated[
        str,
        Field(
            description="Dataset folder (images + .txt captions) in the project, or its name in workspace/datasets/. Kohya folders keep their own repeats; folders named reg/regularisation/class are regularisation images."
        ),
    ],
    training_type: Annotated[
        Literal["character", "style", "concept", "object"], Field(description="What the LoRA should learn.")
    ] = "character",
    family: Annotated[
        str | None, Field(description="Model family: SD1.5, SDXL, Pony, Illustrious, FLUX.1 or SD3.5.")
    ] = None,
    base_model: Annotated[
        str | None,
        Field(
            description="A studio model, or a file path / Hugging Face id on the training machine (default: one of the family)."
        ),
    ] = None,
    trigger_word: Annotated[
        str | None,
        Field(
            description="Switches the LoRA on, first in every caption: for a character, object or concept. A style has none unless wanted."
        ),
    ] = None,
    preset: Annotated[
        Literal["quick", "standard", "thorough"], Field(description="quick: a first test; thorough: best quality.")
    ] = "standard",
    backend: Annotated[Backend | None, Field(description="Trainer to write files for; default from settings.")] = None,
    gpu_vram_gb: Annotated[
        float | None, Field(description="Card to plan for, in GB; default: the studio's detected GPU.", gt=0)
    ] = None,
    sample_prompts: Annotated[
        list[str] | None,
        Field(description="Prompts for preview images during training (default: built from the captions)."),
    ] = None,
    overrides: Annotated[
        dict[str, Any] | None,
        Field(description="Standard-config settings to change, e.g. {'network_rank': 16, 'epochs': 8}."),
    ] = None,
    intent: Annotated[str, Field(description="What the artist wants, in their words (goes to intent.md).")] = "",
) -> Annotated[CallToolResult, TrainingPlan]:
    """Build or revise a LoRA training plan from an intent, a preset and overrides.

    Returns every setting explained, the step arithmetic, the memory estimate and fit, time and cost on rented
    GPUs, whether gate 1 holds, and writes the trainer's files under workspace/configs/{name}/. Nothing trains:
    show it to the artist, then confirm its config hash with train_confirm. A run that was trained is never
    planned again in place: the same name plans its next version ('<name>-v2')."""
    app = app_of(ctx)
    request = PlanRequest(
        name=name,
        intent=intent,
        dataset_path=dataset_path,
        training_type=training_type,
        family=family,
        base_model=base_model,
        trigger_word=trigger_word,
        preset=preset,
        backend=backend,
        gpu_vram_gb=gpu_vram_gb,
        sample_prompts=sample_prompts or [],
        overrides=overrides or {},
    )
    plan = await build_plan(app.settings, app.store, request, comfyui=app.comfyui_checkpoints)
    confirm = f"train_confirm(name='{plan.name}', config_hash='{plan.config_hash}')"
    step = f"Show the artist this plan; only after their yes: {confirm}."
    if not plan.dataset_gate_holds and plan.dataset_audit_call:
        step = f"First {plan.dataset_audit_call}; then show the artist this plan and, after their yes, {confirm}."
    links = [(f"ategnatos://training/{plan.name}", plan.name, "text/markdown")]
    return respond(plan, _plan_summary(plan), next_step=step, links=links)


async def _ask_to_confirm(ctx: Context[Wiring], name: str) -> Elicit[ConfirmAnswer] | NoDialog:
    """Ask the artist in the client's own form (before the tool body runs; a round trip on newer protocols)."""
    if not client_has_dialog(ctx):
        return NoDialog()
    try:
        gates = await read_gates(app_of(ctx).store, safe_name(name, what="training run name"))
        planned = gates.planned_config_hash
    except AtegnatosError:
        return NoDialog()  # the body repeats the check and reports it in plain words
    if planned is None or gates.training_run is not None:  # nothing to ask: the body says why
        return NoDialog()
    return Elicit(
        f"Train the LoRA '{name}' with configuration {planned}? (See grimoire/training/{name}/config.md.)",
        ConfirmAnswer,
    )


def _status_summary(status: RunStatus) -> str:
    marks = {"passed": "✓", "failed": "✗", "pending": "…", "open": "·"}
    head = f"Training run '{status.name}'" + (f" (a new version of '{status.version_of}')" if status.version_of else "")
    lines = [f"{head}:"]
    lines += [f"{marks[g.status]} Gate {g.number} ({g.name}): {g.detail}" for g in status.gates]
    if status.training is not None:
        run = status.training
        lines.append(
            f"Training: {_RUN_WORDS[run.state]} on {run.host}"
            + (f", step {run.step} of {run.total_steps}" if run.total_steps else "")
            + (f", resumed {run.resumes} time(s)" if run.resumes else "")
            + ". Its gates stay as they were when it started."
        )
    lines += status.notices
    return "\n".join(lines)


_RUN_WORDS = {
    "running": "started (running when last checked)",
    "succeeded": "finished",
    "failed": "failed",
    "stopped": "stopped",
    "lost": "ended without saying how",
}


async def _run_status(app: Wiring, name: str) -> RunStatus:
    """The gates of ``name``, after asking the host whether a training run recorded as running has ended."""
    checked = safe_name(name, what="training run name")
    notice = await (await app.training_runs()).refresh_outcome(checked)
    settings = app.settings
    status = await run_status(
        app.store,
        checked,
        taken=lambda n: (settings.configs_dir / n).exists() or (settings.workspace_dir / "training" / n).exists(),
    )
    if notice:
        status.notices.append(notice)
    return status


@guard
async def train_confirm(
    ctx: Context[Wiring],
    name: Annotated[str, Field(description="The training run whose plan the artist confirms.")],
    config_hash: Annotated[
        str | None,
        Field(description="The config hash the artist said yes to (clients without a form)."),
    ] = None,
    answer: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_ask_to_confirm)] = None,  # type: ignore[assignment]
) -> Annotated[CallToolResult, RunStatus]:
    """Gate 2: record the artist's confirmation of one exact configuration. With a client form the artist
    is asked directly; otherwise call with the config hash after their explicit yes."""
    app = app_of(ctx)
    gates = await read_gates(app.store, safe_name(name, what="training run name"))
    refuse_if_trained(gates, "a confirmation")  # before judging the form's answer: nothing was asked
    planned = gates.planned_config_hash
    if planned is None:
        raise InvalidRequestError(
            f"There is no plan called '{name}' to confirm.", hint="Make one with train_plan first."
        )
    if config_hash is not None and config_hash != planned:
        raise InvalidRequestError(
            f"The hash {config_hash!r} is not the current plan of '{name}' ({planned}).",
            hint=f"The plan changed: show the current one to the artist; after their yes: "
            f"train_confirm(name={name!r}, config_hash={planned!r}).",
        )
    if client_has_dialog(ctx):
        # With a form only the artist's answer there counts, never a hash passed by the model.
        # The resolver may have answered NoDialog: only a real form answer counts.
        data: object = answer.data if isinstance(answer, AcceptedElicitation) else None
        said_yes = isinstance(data, ConfirmAnswer) and data.confirm
        if not said_yes:
            raise ConsentError(
                f"The artist did not confirm the plan for '{name}'; nothing was recorded.",
                hint="Ask what to change, revise it with train_plan, and confirm again.",
            )
        status = await confirm_plan(app.store, name, config_hash=planned, method="elicitation")
    elif config_hash is None:
        raise ConsentError(
            f"The plan for '{name}' needs the artist's explicit yes.",
            hint=f"Show the plan to the artist; when they agree: train_confirm(name={name!r}, config_hash={planned!r}).",
        )
    else:
        status = await confirm_plan(app.store, name, config_hash=config_hash, method="explicit")
    return respond(status, _status_summary(status))


@guard
async def train_gates(
    ctx: Context[Wiring],
    name: Annotated[str, Field(description="The training run to look at.")],
) -> Annotated[CallToolResult, RunStatus]:
    """Where a training run stands: its four gates (dataset, confirmation, environment, dry run), a
    launched run's state, and the exact next call. A changed dataset resets the gates after it."""
    status = await _run_status(app_of(ctx), name)
    return respond(status, _status_summary(status))


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register the training tools and the ategnatos://training/{name} resource."""
    add_tool(server, train_plan, name="train_plan", title="Plan a LoRA training", idempotent=True)
    add_tool(server, train_confirm, name="train_confirm", title="Confirm a training plan (gate 2)", idempotent=True)
    add_tool(server, train_gates, name="train_gates", title="Where a training run stands", read_only=True)

    @guard_resource
    async def training_run(name: str) -> str:
        status = await _run_status(app, name)
        records = await read_records(app.store, status.name)
        parts = [_status_summary(status), "", f"Next step: {status.next_step}", ""]  # as train_gates says it
        for filename, text in records.items():
            parts += [f"---\n<!-- {filename} -->", text]
        return "\n".join(parts)

    server.resource(
        "ategnatos://training/{name}",
        name="training-run",
        title="A training run: gates and records",
        description="name is a training run: where its four gates stand, then its records (intent, report, config...).",
        mime_type="text/markdown",
    )(training_run)
