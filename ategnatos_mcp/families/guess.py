"""Guessing which family a model file belongs to, from its safetensors metadata or, failing that, its name.

A guess always comes with the sentence that justifies it, so the artist can see why and correct it.
Metadata wins over the name: ``modelspec.architecture`` (Stability's model spec, written by kohya and
ComfyUI) or kohya's ``ss_base_model_version`` name the architecture; a title or base-model name in the
metadata, or the file name, then tells a fine-tune (Pony, Illustrious) from its base (SDXL).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ategnatos_mcp.families.catalogue import KnownFamily, load_catalogue, normalise

__all__ = ["FamilyGuess", "guess_family"]

# Metadata fields that name the model or the model it was trained on (modelspec and kohya sd-scripts).
_NAME_FIELDS = ("modelspec.title", "ss_sd_model_name", "ss_output_name", "modelspec.description")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


class FamilyGuess(BaseModel):
    """A family id (None when nothing points anywhere) and how it was found, in a sentence."""

    family: str | None
    reason: str
    from_metadata: bool = False


def _by_priority() -> list[KnownFamily]:
    # Fine-tunes first: a Pony file's name also says "XL", which alone would mean SDXL.
    families = load_catalogue().families
    return [f for f in families if f.based_on] + [f for f in families if not f.based_on]


def _name_match(text: str, family: KnownFamily) -> str | None:
    flat = normalise(text)
    words = {w.casefold() for w in _WORDS.findall(text)}
    for pattern in family.name_patterns:
        if pattern in flat:
            return pattern
    return next((token for token in family.name_tokens if token in words), None)


def _from_name(text: str, candidates: list[KnownFamily]) -> tuple[KnownFamily, str] | None:
    for family in candidates:
        hit = _name_match(text, family)
        if hit is not None:
            return family, hit
    return None


def _architecture(metadata: Mapping[str, Any]) -> tuple[KnownFamily, str] | None:
    arch = str(metadata.get("modelspec.architecture") or "").casefold()
    version = str(metadata.get("ss_base_model_version") or "").casefold()
    for family in load_catalogue().families:
        if arch and any(arch.startswith(prefix) for prefix in family.architectures):
            return family, f"its metadata names the architecture '{arch}'"
        if version and any(version.startswith(prefix) for prefix in family.base_versions):
            return family, f"its training metadata names the base model version '{version}'"
    return None


def guess_family(filename: str, metadata: Mapping[str, Any] | None = None) -> FamilyGuess:
    """Which family ``filename`` most likely belongs to, and why (a sentence the artist can check)."""
    metadata = metadata or {}
    found = _architecture(metadata)
    names = " ".join(str(metadata.get(field) or "") for field in _NAME_FIELDS)
    if found is not None:
        base, why = found
        fine_tunes = [f for f in _by_priority() if f.based_on == base.id]
        refined = _from_name(names, fine_tunes) or _from_name(filename, fine_tunes)
        if refined is not None:
            family, hit = refined
            return FamilyGuess(
                family=family.id,
                reason=f"I guessed {family.name}: {why}, and its name says '{hit}'.",
                from_metadata=True,
            )
        return FamilyGuess(family=base.id, reason=f"I guessed {base.name}: {why}.", from_metadata=True)
    by_metadata_name = _from_name(names, _by_priority()) if names.strip() else None
    if by_metadata_name is not None:
        family, hit = by_metadata_name
        return FamilyGuess(
            family=family.id, reason=f"I guessed {family.name}: its metadata names '{hit}'.", from_metadata=True
        )
    by_name = _from_name(filename, _by_priority())
    if by_name is not None:
        family, hit = by_name
        return FamilyGuess(family=family.id, reason=f"I guessed {family.name} from '{hit}' in the file name.")
    return FamilyGuess(family=None, reason=f"Nothing in the name or metadata of '{filename}' says which family it is.")
