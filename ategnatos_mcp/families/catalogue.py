"""The model-family catalogue and its resolver: every alias people type, mapped to one canonical id."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from ategnatos_mcp.errors import InvalidRequestError

__all__ = [
    "FamilyCatalogue",
    "KnownFamily",
    "canonical_family",
    "family_ids",
    "find_family",
    "load_catalogue",
    "normalise",
    "resolve_family",
]


class KnownFamily(BaseModel):
    """One family: its canonical id, the name shown to artists, and the names and clues that point to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9]+$")
    name: str
    based_on: str | None = Field(default=None, description="The family whose architecture it fine-tunes.")
    aliases: list[str] = Field(default_factory=list)
    architectures: list[str] = Field(
        default_factory=list, description="Prefixes of safetensors 'modelspec.architecture' values."
    )
    base_versions: list[str] = Field(
        default_factory=list, description="Prefixes of kohya's 'ss_base_model_version' metadata values."
    )
    name_patterns: list[str] = Field(default_factory=list, description="Found inside a normalised file name.")
    name_tokens: list[str] = Field(default_factory=list, description="Whole words of a file name.")


class FamilyCatalogue(BaseModel):
    """The whole ``catalogue.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    about: str = Field(default="", alias="_about")
    schema_version: int = 1
    families: list[KnownFamily]


def normalise(name: str) -> str:
    """Lower-case letters and digits only: ``"FLUX.1 dev"`` and ``"flux1-dev"`` compare equal."""
    return re.sub(r"[^a-z0-9]+", "", name.casefold())


@cache
def load_catalogue() -> FamilyCatalogue:
    """The catalogue shipped with the package (read once)."""
    text = resources.files("ategnatos_mcp.families").joinpath("catalogue.json").read_text(encoding="utf-8")
    return FamilyCatalogue.model_validate(json.loads(text))


@cache
def _by_key() -> dict[str, KnownFamily]:
    keys: dict[str, KnownFamily] = {}
    for family in load_catalogue().families:
        for key in (family.id, family.name, *family.aliases):
            keys.setdefault(normalise(key), family)
    return keys


def family_ids() -> list[str]:
    """The canonical ids, in catalogue order."""
    return [family.id for family in load_catalogue().families]


def find_family(name: str) -> KnownFamily | None:
    """The family ``name`` means (id, display name or alias, any case or punctuation), or None."""
    return _by_key().get(normalise(name)) if name and name.strip() else None


def resolve_family(name: str) -> KnownFamily:
    """The family ``name`` means.

    Raises:
        InvalidRequestError: no family has that id, name or alias.
    """
    found = find_family(name)
    if found is None:
        known = ", ".join(f"{f.id} ({f.name})" for f in load_catalogue().families)
        raise InvalidRequestError(
            f"I don't know the model family '{name}'.",
            hint=f"Use one of: {known}. Usual short names work too (SDXL, Pony, NoobAI, FLUX.1 dev, SD3.5).",
        )
    return found


def canonical_family(name: str) -> str:
    """The canonical id for a known family; an unknown name comes back normalised (kept, never guessed)."""
    found = find_family(name)
    return found.id if found is not None else normalise(name)
