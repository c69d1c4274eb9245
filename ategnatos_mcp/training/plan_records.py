"""A training plan (what train_plan answers and the artist confirms) and the markdown records it writes:
``intent.md`` and ``config.md`` (settings explained, hash, command). ``planner`` builds the plan."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ategnatos_mcp.training.base_models import BaseModelChoice
from ategnatos_mcp.training.config import TrainingConfig
from ategnatos_mcp.training.costs import GpuOption
from ategnatos_mcp.training.models import BackendName, GateState, PlanRequest
from ategnatos_mcp.training.steps import StepSummary
from ategnatos_mcp.training.vram import MemorySaver, VramEstimate

__all__ = ["TrainingPlan", "render_config_md", "render_intent_md"]


class TrainingPlan(BaseModel):
    """The explained plan the artist confirms (gate 2 is given for ``config_hash``)."""

    name: str
    backend: BackendName
    config: TrainingConfig
    config_hash: str
    explanations: dict[str, str]
    steps: StepSummary
    vram: VramEstimate
    target_gpu_gb: float | None
    fit: str | None = Field(description="fits / tight / unlikely / no on the target card; None without one.")
    savers_applied: list[str]
    savers_suggested: list[MemorySaver]
    gpus: list[GpuOption]
    hours_on_target: float | None
    config_dir: str
    files: list[str]
    command: str
    dry_run_command: str
    notes: list[str]
    gates: GateState
    base_model_choices: list[BaseModelChoice] = Field(
        default_factory=list, description="When no base model was named: the ones this plan could use (first chosen)."
    )
    dataset_gate_holds: bool = Field(default=False, description="Gate 1 holds for this run's folder as it is now.")
    dataset_gate: str = Field(default="", description="Gate 1 for this run, in plain words.")
    dataset_audit_call: str | None = Field(
        default=None, description="When gate 1 does not hold: the exact dataset_audit call that records it."
    )
    new_version_of: str | None = Field(
        default=None, description="Set when the name asked for was already trained: this plan is its new version."
    )
    notices: list[str] = Field(default_factory=list)


def render_intent_md(request: PlanRequest, cfg: TrainingConfig) -> str:
    """What we are training and why, in the artist's words."""
    fam = cfg.family_info
    lines = [
        f"# {cfg.name}: what we are training",
        "",
        request.intent.strip() or "(no description given)",
        "",
        f"- Kind of LoRA: {cfg.training_type}",
        f"- Base model: {cfg.base_model} ({fam.label})",
        f"- Dataset: {cfg.dataset_path} ({cfg.image_count} images)",
        f"- Trigger word: {cfg.trigger_word or 'none'}",
        f"- Preset: {request.preset}",
    ]
    return "\n".join(lines) + "\n"


def _gb(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render_config_md(plan: TrainingPlan) -> str:
    """The configuration with one plain sentence per setting, the step arithmetic, memory, cost and command."""
    cfg, steps, vram = plan.config, plan.steps, plan.vram
    dumped = cfg.model_dump(mode="json")
    lines = [
        f"# {cfg.name}: training configuration",
        "",
        f"Config hash: `{plan.config_hash}` (gate 2 confirms exactly this configuration).",
        f"Backend: {plan.backend}",
        "",
        "## Settings",
        "",
        "| setting | value | what it does |",
        "|---|---|---|",
    ]
    lines += [f"| {key} | {dumped.get(key)} | {text} |" for key, text in plan.explanations.items()]
    lines += [
        "",
        "## Length",
        "",
        steps.explanation,
        "",
        *(f"- {backend}: {text}" for backend, text in steps.per_backend.items()),
        "",
        "## Graphics memory",
        "",
        f"About {vram.gb:g} GB (reports for similar runs range {vram.low_gb:g}-{vram.high_gb:g} GB).",
    ]
    if plan.target_gpu_gb:
        lines.append(f"On your {plan.target_gpu_gb:g} GB card: {plan.fit}.")
    if plan.savers_applied:
        lines.append(f"Switched on to fit: {', '.join(plan.savers_applied)}.")
    lines += [
        "",
        "## Where it can run",
        "",
        "| GPU | VRAM GB | fit | largest batch | blocks swapped | hours | USD |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {g.gpu} | {g.vram_gb:g} | {g.fit} | {g.largest_batch} | {g.block_swap} | {_gb(g.hours)} | {_gb(g.usd)} |"
            for g in plan.gpus
        ),
        "",
        "## Command",
        "",
        f"    {plan.command}",
        "",
        f"Dry run (gate 4): `{plan.dry_run_command}`",
    ]
    if plan.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in plan.notes)]
    return "\n".join(lines) + "\n"
