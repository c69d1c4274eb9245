"""Handing a prompt to generation: the ``comfyui_submit`` arguments for a family's built-in template.

Only names and data cross over (template and parameter names from the model database); the art domain
never imports the ComfyUI package. Clip skip goes to the template parameter ``clip_skip`` (the SD1.5/SDXL
templates have one) whenever the family names a clip skip, unless the database maps it elsewhere.
"""

from __future__ import annotations

from typing import Any

from ategnatos_mcp.art.models import ComfyUIHandoff, Family, PromptDraft, SubmitSuggestion

__all__ = ["handoff_for", "suggest_submit"]

_STANDARD_PARAMS = {
    "positive": "prompt",
    "negative": "negative",
    "width": "width",
    "height": "height",
    "steps": "steps",
    "cfg": "cfg",
    "sampler": "sampler",
    "scheduler": "scheduler",
    "seed": "seed",
}
# Families the model database has no hand-off for yet, but a built-in template serves.
_BUILT_IN: dict[str, ComfyUIHandoff] = {
    "sd35": ComfyUIHandoff(
        template="txt2img-sd35",
        params=_STANDARD_PARAMS,
        checkpoint_param="checkpoint",
        note="The txt2img-sd35 template loads one checkpoint that includes SD3.5's three text encoders "
        "(e.g. sd3.5_large_fp8_scaled.safetensors); the bare sd3.5_large.safetensors has none and needs a "
        "workflow with TripleCLIPLoader. For Medium use about 40 steps at CFG 4.5.",
    ),
}


def handoff_for(family: Family) -> ComfyUIHandoff | None:
    """How ``family`` maps onto a built-in template: the model database's entry, else a built-in one."""
    return family.comfyui or _BUILT_IN.get(family.id)


def suggest_submit(family: Family, draft: PromptDraft, checkpoint: str | None = None) -> SubmitSuggestion | None:
    """The template and parameters that generate ``draft``; None when no built-in template fits the family."""
    handoff = handoff_for(family)
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
