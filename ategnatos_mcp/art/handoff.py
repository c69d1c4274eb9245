"""Handing a prompt to generation: the ``comfyui_submit`` arguments for a family's built-in template.

Only names and data cross over (template and parameter names from the model database); the art domain
never imports the ComfyUI package. Clip skip goes to the template parameter ``clip_skip`` (the SD1.5/SDXL
templates have one) whenever the family names a clip skip, unless the database maps it elsewhere.
"""

from __future__ import annotations

from typing import Any

from ategnatos_mcp.art.models import Family, PromptDraft, SubmitSuggestion

__all__ = ["suggest_submit"]


def suggest_submit(family: Family, draft: PromptDraft, checkpoint: str | None = None) -> SubmitSuggestion | None:
    """The template and parameters that generate ``draft``; None when no built-in template fits the family."""
    handoff = family.comfyui
    if handoff is None:
        return None
    s = draft.settings
    ours: dict[str, Any] = {
        "positive": draft.positive,
        "negative": draft.negative,
        "width": s.width,
        "height": s.height,
        "steps": s.steps,
        "cfg": s.cfg,
        "guidance": s.guidance,
        "sampler": s.sampler,
        "scheduler": s.scheduler,
        "seed": s.seed,
        "clip_skip": s.clip_skip,
    }
    mapping = {"clip_skip": "clip_skip", **handoff.params}
    params = {target: ours[field] for field, target in mapping.items() if ours.get(field) is not None}
    if checkpoint and handoff.checkpoint_param:
        params[handoff.checkpoint_param] = checkpoint
    return SubmitSuggestion(
        template=handoff.template,
        params=params,
        loras=[{"name": lora.name, "weight": lora.weight} for lora in draft.loras],
        note=handoff.note,
    )
