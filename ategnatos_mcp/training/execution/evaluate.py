"""The evaluation grid: each saved LoRA (per epoch) x weights x prompts at one fixed seed, as ready
``comfyui_submit`` calls of the built-in ``lora-test`` template, and eval.md with the grid to fill in.

The grid is a plan: the LoRA files must first be in ComfyUI's ``models/loras`` folder (they are on the
training host), so the jobs are handed back for Claude to queue rather than queued blindly here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath

from ategnatos_mcp.errors import AtegnatosError, InvalidRequestError
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import TrainingConfig, write_records
from ategnatos_mcp.training.execution.models import CheckpointInfo, EvalGrid, EvalJob

__all__ = [
    "DEFAULT_WEIGHTS",
    "Submitter",
    "build_eval_grid",
    "lora_name",
    "pick_lora_files",
    "render_eval_md",
    "submit_grid",
]

COPY_FIRST = (
    "Copy the LoRA files into ComfyUI's models/loras folder first (they are in the run's output folder on the "
    "training host), under each job's lora_name."
)

Submitter = Callable[[EvalJob], Awaitable[str]]
"""Queues one job (its ``comfyui_submit`` arguments) and returns the ComfyUI job id."""

DEFAULT_WEIGHTS = (0.4, 0.6, 0.8, 1.0)
_MAX_PROMPTS = 4
_TEMPLATE_FAMILIES = {"sdxl", "pony", "illustrious"}  # lora-test is an SDXL workflow


def pick_lora_files(checkpoints: list[CheckpointInfo]) -> list[CheckpointInfo]:
    """One file per saved epoch plus the final one (step saves only when there are no epoch saves)."""
    epochs = [c for c in checkpoints if c.kind == "epoch"]
    steps = [c for c in checkpoints if c.kind == "step"]
    final = [c for c in checkpoints if c.kind == "final"]
    return (epochs or steps) + final


_ST_WEIGHTS = "pytorch_lora_weights.safetensors"


def lora_name(run: str, info: CheckpointInfo) -> str:
    """The file's name in ComfyUI: its own name, except SimpleTuner's, which are all called the same."""
    name = PurePosixPath(info.file).name
    if name != _ST_WEIGHTS:
        return name
    return f"{run}-step{info.step:08d}.safetensors" if info.step is not None else f"{run}.safetensors"


def _prompts(cfg: TrainingConfig, prompts: list[str]) -> list[str]:
    chosen = [p.strip() for p in prompts if p.strip()] or list(cfg.sample_prompts)
    if not chosen:
        trigger = f"{cfg.trigger_word}, " if cfg.trigger_word else ""
        subjects = {
            "style": [
                "a lighthouse on a cliff at dusk",
                "a portrait of an old fisherman",
                "a bowl of fruit on a table",
            ],
            "character": ["standing in a park, full body", "close-up portrait, smiling", "sitting in a cafe, reading"],
        }.get(cfg.training_type, ["on a plain background", "in a busy street", "close-up, detailed"])
        chosen = [f"{trigger}{s}" for s in subjects]
    return chosen[:_MAX_PROMPTS]


def build_eval_grid(
    cfg: TrainingConfig,
    checkpoints: list[CheckpointInfo],
    *,
    weights: list[float] | None = None,
    prompts: list[str] | None = None,
    seed: int | None = None,
) -> EvalGrid:
    """The weight grid for the run's saved files.

    Raises:
        InvalidRequestError: nothing was saved yet, or a weight outside 0-2.
    """
    files = pick_lora_files(checkpoints)
    if not files:
        raise InvalidRequestError(
            f"'{cfg.name}' has no saved LoRA file to evaluate yet.",
            hint="Wait until training_status lists saved files (one per epoch), then evaluate.",
        )
    chosen_weights = sorted(set(weights or DEFAULT_WEIGHTS))
    if any(not 0 < w <= 2 for w in chosen_weights):
        raise InvalidRequestError("LoRA weights for the grid must be between 0 and 2.", hint="Try 0.4, 0.6, 0.8, 1.0.")
    chosen_prompts = _prompts(cfg, prompts or [])
    fixed_seed = cfg.seed if seed is None else seed
    checkpoint_param = PurePosixPath(cfg.base_model).name if cfg.base_model.endswith(".safetensors") else None
    jobs: list[EvalJob] = []
    for info in files:
        lora = lora_name(cfg.name, info)
        for weight in chosen_weights:
            for prompt in chosen_prompts:
                params: dict[str, object] = {"prompt": prompt, "seed": fixed_seed}
                params.update(width=cfg.resolution, height=cfg.resolution)
                if checkpoint_param:
                    params["checkpoint"] = checkpoint_param
                jobs.append(
                    EvalJob(
                        checkpoint=info.file,
                        lora_name=lora,
                        epoch=info.epoch,
                        step=info.step,
                        weight=weight,
                        prompt=prompt,
                        seed=fixed_seed,
                        comfyui_submit={
                            "template": "lora-test",
                            "params": params,
                            "loras": [{"name": lora, "weight": weight}],
                        },
                    )
                )
    notes = [
        COPY_FIRST,
        f"Every image uses seed {fixed_seed}, so differences come from the epoch and the weight only.",
    ]
    if cfg.family not in _TEMPLATE_FAMILIES:
        notes.append(
            f"The built-in lora-test workflow is for SDXL-type models; for {cfg.family_info.label} use the same grid "
            "with a workflow of that family (workflow_manage), or by hand."
        )
    return EvalGrid(
        name=cfg.name,
        lora_files=files,
        weights=chosen_weights,
        prompts=chosen_prompts,
        seed=fixed_seed,
        jobs=jobs,
        notes=notes,
    )


def render_eval_md(grid: EvalGrid) -> str:
    lines = [
        f"# {grid.name}: evaluation",
        "",
        f"Weight grid at seed {grid.seed}: {len(grid.lora_files)} LoRA files x {len(grid.weights)} weights x "
        f"{len(grid.prompts)} prompts = {len(grid.jobs)} images.",
        "",
        "## Prompts",
        "",
        *(f"{i}. {p}" for i, p in enumerate(grid.prompts, 1)),
        "",
        "## Grid (write your verdict in each cell: too weak / good / overcooked)",
        "",
        "| LoRA file | epoch | step | " + " | ".join(f"weight {w:g}" for w in grid.weights) + " |",
        "|---|---|---|" + "---|" * len(grid.weights),
    ]
    for info in grid.lora_files:
        name = lora_name(grid.name, info)
        lines.append(f"| {name} | {info.epoch or '-'} | {info.step or '-'} | " + " | " * (len(grid.weights) - 1) + " |")
    lines += ["", "## Notes", "", *(f"- {n}" for n in grid.notes)]
    return "\n".join(lines) + "\n"


async def submit_grid(grid: EvalGrid, submit: Submitter) -> None:
    """Queue every job; stop at the first refusal (a LoRA ComfyUI does not have yet refuses them all alike).

    Once all are queued, the note to copy the LoRA files first is dropped: ComfyUI evidently has them.
    """
    for job in grid.jobs:
        try:
            grid.submitted.append(await submit(job))
        except AtegnatosError as exc:
            grid.notes.insert(
                0,
                f"ComfyUI did not take the grid ({exc.message}) after {len(grid.submitted)} of {len(grid.jobs)} "
                "images; queue the remaining jobs by hand with comfyui_submit once the LoRA files are in "
                "models/loras.",
            )
            return
    if COPY_FIRST in grid.notes:
        grid.notes.remove(COPY_FIRST)


async def write_eval_md(store: GrimoireStore, grid: EvalGrid) -> list[str]:
    """Write eval.md; returns notices about a hand-edited copy kept."""
    return await write_records(store, grid.name, {"eval.md": render_eval_md(grid)})
