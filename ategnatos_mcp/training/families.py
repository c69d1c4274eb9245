"""What training knows about each model family (``data/families.json``), found through the shared catalogue.

Names and aliases live in ``ategnatos_mcp/families`` only, so train_plan accepts every name art_prompt does.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.families import find_family, load_catalogue

__all__ = ["Family", "FamilyVram", "family_names", "load_families", "resolve_family"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FamilyVram(_Frozen):
    """Calibrated memory coefficients of one family (see vram.py)."""

    net_gb_bf16: float
    text_encoders_gb_bf16: float
    lora_mparams_per_rank: float
    activation_gb_per_mp: float
    no_checkpointing_factor: float
    swap_gb_per_block: float
    overhead_gb: float


class KohyaFamily(_Frozen):
    script: str
    network_module: str
    components: dict[str, str] = Field(default_factory=dict)
    extra_args: dict[str, Any] = Field(default_factory=dict)


class AiToolkitFamily(_Frozen):
    arch: str
    noise_scheduler: str
    sampler: str
    components: dict[str, str] = Field(default_factory=dict)


class SimpleTunerFamily(_Frozen):
    model_family: str
    model_flavour: str


class Family(_Frozen):
    """One model family: how each backend names it and what memory it needs."""

    key: str
    label: str
    aliases: list[str]
    architecture: str
    default_resolution: int
    kohya: KohyaFamily
    ai_toolkit: AiToolkitFamily
    simpletuner: SimpleTunerFamily
    text_encoder_trainable: bool
    block_count: int
    vram: FamilyVram
    speed_s_per_it_1mp: float
    notes: list[str] = Field(default_factory=list)
    variant_of: str | None = None


def _read_json(name: str) -> dict[str, Any]:
    return json.loads(resources.files("ategnatos_mcp.training").joinpath("data", name).read_text(encoding="utf-8"))


@cache
def load_families() -> dict[str, Family]:
    """Every family in ``families.json``; variants inherit their parent's fields; names come from the catalogue."""
    raw = {k: v for k, v in _read_json("families.json").items() if not k.startswith("_")}
    known = {family.id: family for family in load_catalogue().families}
    families: dict[str, Family] = {}
    for key, entry in raw.items():
        if key not in known:
            raise ValueError(f"training families.json: '{key}' is not in the family catalogue")
        merged = dict(raw[entry["variant_of"]]) if "variant_of" in entry else {}
        merged.update(entry)
        if "variant_of" in entry:
            merged["notes"] = [*raw[entry["variant_of"]].get("notes", []), *entry.get("notes", [])]
        merged.update(label=known[key].name, aliases=list(known[key].aliases))
        families[key] = Family(key=key, **merged)
    return families


def family_names() -> list[str]:
    """The family keys, for messages and schemas."""
    return list(load_families())


def resolve_family(name: str) -> Family:
    """The family called ``name`` (key, label or alias, any case).

    Raises:
        InvalidRequestError: no family has that name.
    """
    found = find_family(name)
    family = load_families().get(found.id) if found is not None else None
    if family is None:
        known = ", ".join(f"{f.key} ({f.label})" for f in load_families().values())
        raise InvalidRequestError(
            f"'{name}' is not a model family Ategnatos can train.",
            hint=f"Use one of: {known}. Usual short names work too (SDXL, Pony, NoobAI, FLUX.1 dev, SD3.5).",
        )
    return family
