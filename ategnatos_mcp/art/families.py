"""The model database: what art knows about each family, looked up through the shared family catalogue,
and the right size for an aspect ratio."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ategnatos_mcp.art.models import Family, FamilyDatabase, FeedbackMap
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.families import find_family, load_catalogue

__all__ = [
    "DATA_DIR",
    "FamilyCatalog",
    "load_family_database",
    "load_feedback_map",
    "parse_aspect",
    "pick_resolution",
]

DATA_DIR = Path(__file__).resolve().parent / "data"

_NAMED_RATIOS = {
    "square": "1:1",
    "portrait": "2:3",
    "landscape": "3:2",
    "wide": "16:9",
    "widescreen": "16:9",
    "tall": "9:16",
    "story": "9:16",
    "banner": "21:9",
}


def load_family_database(path: Path | None = None) -> FamilyDatabase:
    """Read and validate the model database (blocking: call from a worker thread).

    Names and aliases come from the shared catalogue, so art knows a family by exactly the names training,
    the eye and the studio know it by.
    """
    raw: dict[str, Any] = json.loads((path or DATA_DIR / "model_families.json").read_text(encoding="utf-8"))
    known = {family.id: family for family in load_catalogue().families}
    for entry in raw.get("families", []):
        family = known.get(str(entry.get("id")))
        if family is None:
            raise ValueError(f"model_families.json: '{entry.get('id')}' is not in the family catalogue")
        entry.setdefault("name", family.name)
        entry.setdefault("aliases", list(family.aliases))
    return FamilyDatabase.model_validate(raw)


def load_feedback_map(path: Path | None = None) -> FeedbackMap:
    """Read and validate the feedback mapping (blocking: call from a worker thread)."""
    return FeedbackMap.model_validate_json((path or DATA_DIR / "feedback.json").read_text(encoding="utf-8"))


class FamilyCatalog:
    """Art's facts per family, found by any name the shared catalogue knows (``"PDXL"``, ``"FLUX.1 dev"``)."""

    def __init__(self, database: FamilyDatabase) -> None:
        self.families = database.families
        self._by_id = {family.id: family for family in database.families}

    @property
    def ids(self) -> list[str]:
        return [family.id for family in self.families]

    def find(self, name: str) -> Family | None:
        known = find_family(name)
        return self._by_id.get(known.id) if known is not None else None

    def get(self, name: str) -> Family:
        """The family called ``name``.

        Raises:
            NotFoundError: no family has that id, name or alias.
        """
        family = self.find(name)
        if family is None:
            raise NotFoundError(
                f"I don't know the model family '{name}'.",
                kind="model family",
                name=name,
                hint=f"Use one of: {', '.join(f'{f.id} ({f.name})' for f in self.families)}.",
            )
        return family

    def for_lora_base(self, base: str) -> list[Family]:
        """The family a LoRA's base model names (empty when the base is unknown or not set)."""
        found = self.find(base)
        return [found] if found is not None else []


def parse_aspect(value: str) -> float:
    """A width/height ratio from ``"16:9"``, ``"1200x630"``, ``"1.91"`` or a name like ``"portrait"``.

    Raises:
        InvalidRequestError: the value cannot be read as a ratio.
    """
    text = _NAMED_RATIOS.get(value.strip().casefold(), value.strip().casefold())
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*[:x×/]\s*(\d+(?:\.\d+)?)", text)
    try:
        ratio = float(match.group(1)) / float(match.group(2)) if match else float(text)
    except (ValueError, ZeroDivisionError):
        ratio = 0.0
    if not (0.1 <= ratio <= 10):
        raise InvalidRequestError(
            f"'{value}' is not an aspect ratio I can use.",
            hint="Give it as 16:9, as a target size like 1200x630, or as square / portrait / landscape / wide.",
        )
    return ratio


def pick_resolution(family: Family, aspect: str | None) -> tuple[str, tuple[int, int]]:
    """The family's trained size closest to the requested aspect ratio (1:1 when none is asked for)."""
    if not aspect:
        return "1:1", family.resolutions["1:1"]
    wanted = math.log(parse_aspect(aspect))

    def distance(item: tuple[str, tuple[int, int]]) -> float:
        width, height = item[1]
        return abs(math.log(width / height) - wanted)

    return min(family.resolutions.items(), key=distance)
