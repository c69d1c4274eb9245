"""Handing a prompt to generation: the ``comfyui_submit`` arguments for a family's built-in template.

Only names and data cross over (template and parameter names from the model database); the art domain
never imports the ComfyUI package. Clip skip goes to the template parameter ``clip_skip`` (the SD1.5/SDXL
templates have one) whenever the family names a clip skip, unless the database maps it elsewhere.
"""

from __future__ import annotations

from typing import Any

from ategnatos_mcp.art.models import ComfyUIHandoff, Family, PromptDraft, PromptSettings, SubmitSuggestion

__all__ = [
    "checkpoint_from_params",
    "handoff_for",
    "handoff_note",
    "prompt_from_params",
    "settings_from_params",
    "suggest_submit",
]

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


def handoff_note(family: Family) -> str:
    """What to know about the family's template (e.g. which checkpoint files carry SD3.5's text encoders)."""
    handoff = handoff_for(family)
    return handoff.note if handoff is not None else ""


def suggest_submit(
    family: Family,
    draft: PromptDraft,
    checkpoint: str | None = None,
    *,
    project: str | None = None,
    asset: str | None = None,
    version: int | None = None,
) -> SubmitSuggestion | None:
    """The complete ``comfyui_submit`` arguments that generate ``draft``; None when no built-in template fits.

    The checkpoint is ``checkpoint``, else the draft's own; with project, asset and version the submit
    records its seed and pictures on that version.
    """
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
    model = checkpoint or draft.checkpoint
    if model and handoff.checkpoint_param:
        params[handoff.checkpoint_param] = model
    return SubmitSuggestion(
        template=handoff.template,
        params=params,
        loras=[{"name": lora.name, "weight": lora.weight} for lora in draft.loras],
        project=project,
        asset=asset,
        version=version,
    )


def settings_from_params(family: Family, params: dict[str, Any], base: PromptSettings) -> PromptSettings:
    """``base`` with what a template's parameters say (the reverse of ``suggest_submit``)."""
    handoff = handoff_for(family)
    mapping = {"clip_skip": "clip_skip", **(handoff.params if handoff else _STANDARD_PARAMS)}
    fields = {"width", "height", "steps", "cfg", "guidance", "sampler", "scheduler", "seed", "clip_skip"}
    update = {
        field: params[target] for field, target in mapping.items() if field in fields and params.get(target) is not None
    }
    return PromptSettings.model_validate({**base.model_dump(), **update})


def prompt_from_params(family: Family, params: dict[str, Any]) -> tuple[str | None, str | None]:
    """The positive and negative prompt a template's parameters carry (None where absent)."""
    handoff = handoff_for(family)
    mapping = handoff.params if handoff else _STANDARD_PARAMS
    positive, negative = params.get(mapping.get("positive", "prompt")), params.get(mapping.get("negative", "negative"))
    return (str(positive) if positive is not None else None, str(negative) if negative is not None else None)


def checkpoint_from_params(family: Family, params: dict[str, Any]) -> str | None:
    handoff = handoff_for(family)
    name = params.get(handoff.checkpoint_param) if handoff and handoff.checkpoint_param else None
    return str(name) if name else None
