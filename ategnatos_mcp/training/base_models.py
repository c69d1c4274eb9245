"""Which base model to train on: the artist's own (studio inventory), what a ComfyUI server has, and a few
downloadable ids per family (``data/base_models.json``, with sources) that any training machine can fetch.

A studio model (a path on this computer) or a downloadable id is a value ``base_model`` takes as it is; a ComfyUI
checkpoint is only a file name on that server's machine (its family guessed from the name), so it is offered with
what to do, never chosen by itself.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, Field

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio import read_studio
from ategnatos_mcp.training.families import Family, resolve_family
from ategnatos_mcp.training.models import PlanRequest

__all__ = [
    "BaseModelChoice",
    "CheckpointLister",
    "base_model_choices",
    "downloadable_models",
    "resolve_base_model",
]


class BaseModelChoice(BaseModel):
    """One base model the plan could train on."""

    value: str = Field(description="What to pass as base_model (a ComfyUI file: its name on that machine).")
    where: Literal["studio", "comfyui", "download"]
    label: str
    note: str = ""
    source: str = ""
    ready: bool = Field(
        default=True, description="base_model takes it as it is (a file to download first or a ComfyUI name: no)."
    )


@functools.cache
def _catalogue() -> dict[str, Any]:
    text = resources.files("ategnatos_mcp.training").joinpath("data", "base_models.json").read_text(encoding="utf-8")
    return json.loads(text)


def downloadable_models(family: Family) -> list[BaseModelChoice]:
    """The downloadable base models of ``family`` (of its parent family when it has none of its own)."""
    entries = _catalogue().get(family.key) or []
    choices = []
    for entry in entries:
        gated = " Gated: accept its licence on the model page and set HF_TOKEN on the training machine." * bool(
            entry.get("gated")
        )
        fetched = (
            "The trainer downloads it on first use." if entry["kind"] == "hf" else f"Download {entry['file']} first."
        )
        choices.append(
            BaseModelChoice(
                value=entry["id"],
                where="download",
                label=entry["label"],
                note=" ".join(p for p in (fetched, entry.get("note", ""), gated.strip()) if p),
                source=entry["source"],
                ready=entry["kind"] == "hf",
            )  # fmt: skip
        )
    return choices


def _squashed(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _named_for(family: Family, filename: str) -> bool:
    """A guess from the file name alone (e.g. 'sd_xl_base_1.0' is SDXL, 'ponyDiffusionV6XL' is Pony)."""
    name = _squashed(filename)
    keys = {_squashed(a) for a in (*family.aliases, family.key) if len(_squashed(a)) >= 4}
    return any(key in name for key in keys)


async def base_model_choices(
    store: GrimoireStore, family: Family, comfyui: dict[str, list[str]] | None = None
) -> list[BaseModelChoice]:
    """The studio's models of ``family``, then ComfyUI checkpoints named like it, then downloadable ids."""
    choices: list[BaseModelChoice] = []
    for model in (await read_studio(store)).models:
        try:
            same = bool(model.base) and resolve_family(model.base).key == family.key
        except InvalidRequestError:
            same = False
        if same and model.kind == "checkpoint":
            choices.append(
                BaseModelChoice(
                    value=model.location or model.name,
                    where="studio",
                    label=model.name,
                    note="Registered in your studio" + (f" ({model.location})." if model.location else "."),
                )  # fmt: skip
            )
    for url, files in (comfyui or {}).items():
        note = (
            f"In the checkpoints of the ComfyUI at {url} (its family guessed from the name). To train on it on "
            "that machine, pass its full path there as base_model."
        )
        choices += [
            BaseModelChoice(value=f, where="comfyui", label=f, note=note, ready=False)
            for f in files
            if _named_for(family, f)
        ]
    return [*choices, *downloadable_models(family)]


async def _studio_model(store: GrimoireStore, wanted: str) -> tuple[str, str] | None:
    """(location, base) of a studio inventory model called ``wanted``, if there is one."""
    inventory = await read_studio(store)
    for model in inventory.models:
        if model.name.lower() == wanted.strip().lower():
            return (model.location or model.name, model.base)
    return None


CheckpointLister = Callable[[], Awaitable[dict[str, list[str]]]]


async def resolve_base_model(
    store: GrimoireStore, request: PlanRequest, comfyui: CheckpointLister | None
) -> tuple[str, Family, list[BaseModelChoice], str | None]:
    """The base model, its family, the choices offered (when none was named) and a note on the one chosen."""
    found = await _studio_model(store, request.base_model) if request.base_model else None
    family_name = request.family or (found[1] if found else None)
    if not family_name:
        raise InvalidRequestError(
            "The plan needs a model family (SD1.5, SDXL, Pony, Illustrious, FLUX.1 or SD3.5).",
            hint="Pass family=..., or name a base model registered in the studio with its base (studio_register).",
        )
    family = resolve_family(family_name)
    if found:
        return found[0], family, [], None
    if request.base_model:
        return request.base_model, family, [], None
    choices = await base_model_choices(store, family, await comfyui() if comfyui is not None else None)
    usable = [c for c in choices if c.ready]
    if not usable:
        found_here = " ".join(f"{c.value}: {c.note}" for c in choices)
        raise InvalidRequestError(
            f"Which {family.label} model should the LoRA be trained on? None can be taken as it is."
            + (f" Found: {found_here}" if found_here else ""),
            hint="Pass base_model: a model registered in the studio, a file path on the training machine, or a "
            "Hugging Face id.",
        )
    chosen = usable[0]
    others = "; ".join(f"{c.value} ({c.where})" for c in choices if c is not chosen)
    note = (
        f"Base model: {chosen.value} ({chosen.label}), chosen because none was named. {chosen.note}"
        + (f" Other choices: {others}." if others else "")
        + " Pass base_model=... to train on another."
    )
    return chosen.value, family, choices, note
