"""Recording what ComfyUI made on the asset's iteration log, so nobody has to log a generation by hand.

``comfyui_submit`` with a project and asset hands its job here: the seed ComfyUI used, the checkpoint,
template or workflow, and the saved pictures go onto the version the prompt came from. When the
parameters sent differ from that version's prompt (edited by hand), or no version is named, the job
becomes a new "logged" version with exactly what was sent, so every version stays reproducible.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ategnatos_mcp.art.families import FamilyCatalog
from ategnatos_mcp.art.handoff import checkpoint_from_params, prompt_from_params, settings_from_params
from ategnatos_mcp.art.iterations import add_version, get_version, record_generation
from ategnatos_mcp.art.models import ArtAsset, Family, Iteration, LoraUse, PromptDraft
from ategnatos_mcp.art.prompt import build_prompt
from ategnatos_mcp.art.terms import parse_terms
from ategnatos_mcp.families import guess_family

__all__ = ["Generation", "apply_generation"]


class Generation(BaseModel):
    """One ComfyUI job as the iteration log needs it."""

    job_id: str
    state: str
    seed: int | None = None
    template: str | None = None
    workflow: str | None = Field(default=None, description="The saved workflow's name, when one was used.")
    params: dict[str, Any] = Field(default_factory=dict, description="The template parameters actually used.")
    loras: list[LoraUse] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)


def _same_prompt(it: Iteration, family: Family, gen: Generation) -> bool:
    positive, negative = prompt_from_params(family, gen.params)
    return (positive is None or positive == it.positive) and (negative is None or negative == it.negative)


def _family_for(doc: ArtAsset, catalog: FamilyCatalog, gen: Generation) -> Family | None:
    if doc.iterations:
        return catalog.get(doc.iterations[-1].family)
    checkpoint = next((str(v) for k, v in gen.params.items() if k in ("checkpoint", "ckpt_name") and v), None)
    guess = guess_family(checkpoint).family if checkpoint else None
    return catalog.find(guess) if guess else None


def _logged(doc: ArtAsset, family: Family, gen: Generation, now: datetime, based_on: int | None) -> Iteration:
    positive, negative = prompt_from_params(family, gen.params)
    base = build_prompt(family, positive or "").settings
    draft = PromptDraft(
        family=family.id,
        family_name=family.name,
        positive=positive or "",
        negative=negative or "",
        positive_terms=parse_terms(positive or "", family),
        negative_terms=parse_terms(negative or "", family, negative=True),
        settings=settings_from_params(family, gen.params, base),
        loras=list(gen.loras),
        checkpoint=checkpoint_from_params(family, gen.params),
    )
    return add_version(doc, draft, now=now, origin="logged", based_on=based_on, template=gen.template)


def apply_generation(
    doc: ArtAsset, version: int | None, gen: Generation, *, catalog: FamilyCatalog, now: datetime
) -> tuple[Iteration | None, list[str]]:
    """Put ``gen`` on ``version`` (or on a new logged version); returns it and what the artist should know."""
    notices: list[str] = []
    target = get_version(doc, version) if version is not None else None
    family = catalog.get(target.family) if target is not None else _family_for(doc, catalog, gen)
    if family is None:
        return None, [
            f"Job {gen.job_id} was not logged on {doc.project}/{doc.asset}: nothing says which model family made "
            "it. Log it with art_iterations (action 'log') giving its family."
        ]
    if target is not None and not _same_prompt(target, family, gen):
        notices.append(
            f"The prompt sent differs from version {target.version}'s, so the job is logged as a new version."
        )
        target = _logged(doc, family, gen, now, based_on=target.version)
    elif target is None:
        latest = doc.iterations[-1] if doc.iterations else None
        if latest is not None and _same_prompt(latest, family, gen) and not latest.job_ids:
            target = latest
        else:
            target = _logged(doc, family, gen, now, based_on=None)
    record_generation(
        target,
        job_id=gen.job_id,
        seed=gen.seed,
        outputs=gen.outputs,
        template=gen.template,
        workflow=gen.workflow,
        checkpoint=checkpoint_from_params(family, gen.params),
    )
    return target, notices
