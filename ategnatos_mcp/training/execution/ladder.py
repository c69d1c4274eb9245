"""The memory savers the out-of-memory ladder switches on after the batch is down to 1, one at a time.

The supervisor first halves the batch (keeping the effective batch through gradient accumulation). When that is
exhausted it goes on with the backend's own memory savers, in this order, each only if the plan has it off and the
backend can express it: gradient checkpointing, cached latents, cached text-encoder outputs, an 8-bit optimizer,
an 8-bit base model. Each rung is rendered here as the backend's real files (``render_backend`` checks every
option against the backend's catalogue), so the supervisor, which has only the standard library, just writes them
and sets the batch again. Lowering the resolution changes what the LoRA learns: it is never a rung, only proposed
(``lower_resolution``) for the artist to say yes to with a new plan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from ategnatos_mcp.training.config import TrainingConfig
from ategnatos_mcp.training.versions import plan_call

__all__ = ["SaverRung", "lower_resolution", "memory_rungs", "out_of_memory_advice", "replan_call"]

_OPTIMIZER_WORDS = {"prodigy": "Prodigy", "lion": "Lion"}


class SaverRung(BaseModel):
    """One memory saver, with the files of the run once it (and every rung before it) is on."""

    id: str
    label: str = Field(description="What it is, in plain words ('gradient checkpointing').")
    why: str = Field(description="What it costs or gives, following the label ('which saves ...').")
    options: list[str] = Field(description="The backend's own settings it switches on.")
    overrides: dict[str, Any] = Field(description="The standard-config settings of this rung and the ones before it.")
    helps_loading: bool = Field(description="It lowers the memory needed to load the model (before the first step).")
    files: dict[str, str] = Field(description="Config files (name -> text) that change at this rung.")


def _savers(cfg: TrainingConfig, backend: str) -> list[tuple[str, str, str, dict[str, str], dict[str, Any], bool]]:
    """(id, label, why, option per backend, config changes, helps loading) of every saver the plan has off."""
    savers: list[tuple[str, str, str, dict[str, str], dict[str, Any], bool]] = []
    if not cfg.gradient_checkpointing:
        savers.append((
            "gradient_checkpointing", "gradient checkpointing",
            "which saves memory at about 20 % more time (values are recomputed instead of kept)",
            {"kohya": "gradient_checkpointing", "ai-toolkit": "train.gradient_checkpointing",
             "simpletuner": "gradient_checkpointing"},
            {"gradient_checkpointing": True}, False,
        ))  # fmt: skip
    if not cfg.cache_latents:
        savers.append((
            "cache_latents", "cached image latents",
            "which saves memory and some time: each image is encoded once, so the image encoder leaves the card",
            {"kohya": "cache_latents, cache_latents_to_disk", "ai-toolkit": "datasets[].cache_latents_to_disk"},
            {"cache_latents": True}, False,
        ))  # fmt: skip
    if not cfg.cache_text_encoder and not cfg.trains_text_encoder:
        savers.append((
            "cache_text_encoder", "cached text-encoder outputs",
            "which saves memory: each caption is read once, so the prompt reader leaves the card",
            {"kohya": "cache_text_encoder_outputs, cache_text_encoder_outputs_to_disk"},
            {"cache_text_encoder": True}, False,
        ))  # fmt: skip
    if cfg.optimizer in _OPTIMIZER_WORDS and not (backend == "simpletuner" and cfg.optimizer == "lion"):
        before = _OPTIMIZER_WORDS[cfg.optimizer]
        savers.append((
            "optimizer_8bit", "the 8-bit AdamW optimizer",
            f"which keeps its bookkeeping in 8 bits and saves memory with little quality difference; it replaces "
            f"{before}, at the learning rate of 0.0001 the presets use with it",
            {"kohya": "optimizer_type = AdamW8bit", "ai-toolkit": "train.optimizer: adamw8bit",
             "simpletuner": "optimizer: bnb-adamw8bit"},
            {"optimizer": "adamw8bit", "learning_rate": 1e-4, "lr_scheduler": "constant"}, False,
        ))  # fmt: skip
    if cfg.base_precision == "bf16":
        savers.append((
            "fp8_base", "the base model loaded in 8 bits",
            "which saves several GB (also while loading); the LoRA itself still trains at full precision",
            {"kohya": "fp8_base", "ai-toolkit": "model.quantize, model.qtype: qfloat8",
             "simpletuner": "base_model_precision: int8-quanto"},
            {"base_precision": "fp8"}, True,
        ))  # fmt: skip
    return savers


def memory_rungs(
    cfg: TrainingConfig, backend: str, render: Callable[[TrainingConfig], dict[str, str]]
) -> list[SaverRung]:
    """The savers ``backend`` can switch on for ``cfg``, in order; ``render`` gives a config's files (by name).

    A saver whose files come out the same as without it is one the backend does not have (or always uses, as
    SimpleTuner caches latents): it is left out.
    """
    rungs: list[SaverRung] = []
    changes: dict[str, Any] = {}
    current = render(cfg)
    for saver_id, label, why, options, change, helps_loading in _savers(cfg, backend):
        option = options.get(backend)
        if option is None:
            continue
        trial = {**changes, **change}
        files = render(TrainingConfig(**{**cfg.model_dump(), **trial}))
        changed = {name: text for name, text in files.items() if current.get(name) != text}
        if not changed:
            continue
        changes, current = trial, files
        rungs.append(
            SaverRung(
                id=saver_id,
                label=label,
                why=why,
                options=[o.strip() for o in option.split(",")],
                overrides=dict(changes),
                helps_loading=helps_loading,
                files=changed,
            )  # fmt: skip
        )
    return rungs


def lower_resolution(cfg: TrainingConfig) -> int | None:
    """The next lower training resolution to propose (256 px less, at least 512), or None when there is none."""
    lower = cfg.resolution - 256
    return lower if lower >= 512 else None


def replan_call(name: str, request: dict[str, Any] | None, overrides: dict[str, Any]) -> str:
    """The exact train_plan call that plans ``name`` as it was planned, with ``overrides`` added."""
    merged = {**(request or {}), "overrides": {**dict((request or {}).get("overrides") or {}), **overrides}}
    return plan_call(name, merged) or f"train_plan(name={name!r}, overrides={overrides!r}, ...)"


def out_of_memory_advice(
    cfg: TrainingConfig, name: str, request: dict[str, Any] | None, *, new_version: str | None = None
) -> str:
    """What is left when even batch 1 with every memory saver does not fit: proposed, never done unasked."""
    lower = lower_resolution(cfg)
    bigger = "train on a GPU with more memory (gpu_offers shows which fit)."
    if lower is None:
        return f"It does not fit this card at the lowest resolution worth training ({cfg.resolution} px): {bigger}"
    plans = f" (it plans the next version, '{new_version}')" if new_version else ""
    return (
        f"What is left is training at a lower resolution, {lower} px instead of {cfg.resolution} px. That changes "
        "the LoRA (it learns less fine detail), so it is not done without the artist's yes: ask, and if they agree, "
        f"{replan_call(name, request, {'resolution': lower})}{plans}, then confirm it. Or {bigger}"
    )
