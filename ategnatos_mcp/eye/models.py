"""The taste profile: what the artist likes, avoids and never wants, each entry with its evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ategnatos_mcp.state import Document, Migration

__all__ = [
    "CATEGORIES",
    "CATEGORY_TITLES",
    "EYE_DOCUMENT",
    "Category",
    "Evidence",
    "EyeProfile",
    "EyeQuery",
    "Level",
    "Preference",
]

EYE_DOCUMENT = "eye"

Category = Literal["color", "texture", "composition", "style", "subject", "anti-preferences", "model-combos"]
Level = Literal["prefer", "avoid", "never"]

CATEGORIES: tuple[Category, ...] = (
    "color",
    "texture",
    "composition",
    "style",
    "subject",
    "anti-preferences",
    "model-combos",
)
CATEGORY_TITLES: dict[Category, str] = {
    "color": "Color",
    "texture": "Texture",
    "composition": "Composition",
    "style": "Style",
    "subject": "Subject",
    "anti-preferences": "Anti-Preferences",
    "model-combos": "Model Combos",
}


class Evidence(BaseModel):
    """Why an entry exists or changed: when, which kind of change, from what feedback."""

    model_config = ConfigDict(extra="forbid")

    at: datetime
    action: Literal["added", "confirmed", "weakened", "contradicted", "level", "imported", "edited"]
    note: str = ""
    session: str = ""


class Preference(BaseModel):
    """One taste entry."""

    model_config = ConfigDict(extra="forbid")

    id: str
    category: Category
    text: str
    level: Level = "prefer"
    terms: list[str] = Field(default_factory=list, description="Prompt words; empty means the text itself.")
    families: list[str] = Field(default_factory=list, description="Model families it applies to; empty = all.")
    confirmations: int = 1
    confirmation_keys: list[str] = Field(default_factory=list, description="Sessions/days that confirmed it.")
    contradictions: int = 0
    evidence: list[Evidence] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    @property
    def prompt_terms(self) -> list[str]:
        return self.terms or [self.text]

    @property
    def disputed(self) -> bool:
        """Contradicted at least as often as confirmed: shown, but not applied to prompts."""
        return self.contradictions > 0 and self.contradictions >= self.confirmations


def _m001_kept_as_written(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "kept_as_written": raw.get("kept_as_written", [])}


class EyeProfile(Document):
    """The whole taste profile (``grimoire/.state/eye.json``, rendered as ``grimoire/eye.md``)."""

    SCHEMA_VERSION: ClassVar[int] = 2
    MIGRATIONS: ClassVar[dict[int, Migration]] = {1: _m001_kept_as_written}

    schema_version: int = 2
    entries: list[Preference] = Field(default_factory=list)
    kept_as_written: list[str] = Field(
        default_factory=list, description="Lines of eye.md that could not be read, exactly as the artist wrote them."
    )

    def find(self, entry_id: str) -> Preference | None:
        return next((entry for entry in self.entries if entry.id == entry_id), None)


class EyeQuery(BaseModel):
    """What the profile says for one request: terms to add, terms to exclude, and conflicts to flag."""

    family: str | None = None
    subject: str | None = None
    positive_terms: list[str] = Field(default_factory=list)
    negative_terms: list[str] = Field(default_factory=list)
    never_conflicts: list[str] = Field(default_factory=list, description="NEVER entries the request asks for.")
    avoid_overrides: list[str] = Field(default_factory=list, description="AVOID terms the request explicitly wants.")
    combos: list[str] = Field(default_factory=list)
    used_entries: list[str] = Field(default_factory=list, description="Ids of the entries that shaped this answer.")
    disputed: list[str] = Field(default_factory=list, description="Entries left out because they were contradicted.")
