"""The art domain's models: prompts, iterations, the library and the answers (the data files' models live in
``database.py`` and are re-exported here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ategnatos_mcp.art.database import (
    Adjustment,
    ComfyUIHandoff,
    EyeSuggestion,
    Fact,
    FactKey,
    Family,
    FamilyDatabase,
    FamilySettings,
    FeedbackMap,
    FeedbackRule,
    PromptStyle,
    Source,
)
from ategnatos_mcp.state import Document

__all__ = [
    "Adjustment",
    "AppliedFeedback",
    "ArtAsset",
    "AssetSpec",
    "ComfyUIHandoff",
    "Explanation",
    "EyeSuggestion",
    "Family",
    "FamilyDatabase",
    "FamilySettings",
    "Fact",
    "FactKey",
    "FeedbackMap",
    "FeedbackRule",
    "Iteration",
    "LibraryDocument",
    "LibraryEntry",
    "LibraryMatch",
    "LoraUse",
    "PromptDraft",
    "PromptSettings",
    "PromptStyle",
    "PromptTerm",
    "Source",
    "TasteGuidance",
    "IterationSummary",
    "IterationsAnswer",
    "LibraryAnswer",
    "PromptAnswer",
    "SubmitSuggestion",
]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Prompts -------------------------------------------------------------------------------------------
class TasteGuidance(_Data):
    """What the eye says for one request, as the art domain uses it."""

    positive: list[str] = Field(default_factory=list)
    negative: list[str] = Field(default_factory=list)
    never: list[str] = Field(default_factory=list, description="NEVER terms: always in the negative, never positive.")
    never_conflicts: list[str] = Field(default_factory=list)
    avoid_overrides: list[str] = Field(default_factory=list)
    combos: list[str] = Field(default_factory=list)
    entries: list[str] = Field(default_factory=list, description="Ids of the eye entries behind this guidance.")
    weights: dict[str, float] = Field(
        default_factory=dict, description="Prefer term -> weight from its confirmations (1.0 when missing)."
    )
    sessions: dict[str, int] = Field(
        default_factory=dict, description="Prefer term -> sessions that confirmed it, net of contradictions."
    )


class PromptTerm(_Data):
    """One phrase of a prompt; weight 1.0 renders without emphasis."""

    text: str
    weight: float = 1.0


class PromptSettings(_Data):
    """The settings to generate with."""

    sampler: str
    scheduler: str
    steps: int
    cfg: float
    guidance: float | None = None
    clip_skip: int | None = None
    width: int
    height: int
    seed: int | None = None


class LoraUse(_Data):
    name: str
    weight: float
    trigger_words: list[str] = Field(default_factory=list)


class Explanation(_Data):
    """One choice made in a prompt and why, in a sentence.

    ``fact`` names the model-database fact the sentence starts with (word for word); explanations without
    one speak only about the artist's own request, eye, studio or library.
    """

    choice: str
    why: str
    fact: FactKey | None = None


class AppliedFeedback(_Data):
    rule: str
    phrase: str
    why: str


class LibraryMatch(_Data):
    family: str
    name: str
    positive: str
    tags: list[str] = Field(default_factory=list)
    score: float


class PromptDraft(_Data):
    """A built or adjusted prompt, ready to generate or to present for manual use."""

    family: str
    family_name: str
    positive: str
    negative: str
    positive_terms: list[PromptTerm]
    negative_terms: list[PromptTerm]
    settings: PromptSettings
    loras: list[LoraUse] = Field(default_factory=list)
    checkpoint: str | None = Field(default=None, description="The checkpoint file to generate with, when known.")
    explanations: list[Explanation] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list, description="Requests that clash with a NEVER entry.")
    warnings: list[str] = Field(default_factory=list)
    applied_feedback: list[AppliedFeedback] = Field(default_factory=list)
    unrecognized_feedback: list[str] = Field(
        default_factory=list, description="Feedback no rule covers: interpret it and pass explicit changes."
    )
    similar: list[LibraryMatch] = Field(default_factory=list)
    tips: list[str] = Field(default_factory=list)
    available_loras: list[str] = Field(default_factory=list)
    eye_entries: list[str] = Field(default_factory=list, description="Ids of the taste entries that shaped it.")


# Iterations (grimoire/projects/{p}/assets/{a}/) ----------------------------------------------------
class AssetSpec(_Data):
    purpose: str = ""
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    formats: list[str] = Field(default_factory=list)
    notes: str = ""


class Iteration(_Data):
    """One attempt: everything needed to make it again (prompt, model, LoRAs, settings, seed, template or
    workflow), what came out, and what the artist said."""

    version: int
    created_at: datetime
    family: str
    positive: str
    negative: str
    positive_terms: list[PromptTerm]
    negative_terms: list[PromptTerm]
    settings: PromptSettings
    loras: list[LoraUse] = Field(default_factory=list)
    checkpoint: str | None = Field(default=None, description="The checkpoint file it was (or is to be) made with.")
    template: str | None = Field(default=None, description="The built-in ComfyUI template that generates it.")
    workflow: str | None = Field(default=None, description="A saved workflow it was generated with instead.")
    job_ids: list[str] = Field(default_factory=list, description="ComfyUI jobs that generated it.")
    based_on: int | None = None
    origin: Literal["built", "adjusted", "reverted", "logged"] = "built"
    intent: str = ""
    applied_feedback: list[AppliedFeedback] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    feedback: str = ""
    eye_entries: list[str] = Field(
        default_factory=list, description="Ids of the taste entries art_prompt used for it (kept through revisions)."
    )


class ArtAsset(Document):
    """``grimoire/projects/{p}/assets/{a}/.state/asset.json``: the source of truth for the three markdown views."""

    SCHEMA_VERSION: ClassVar[int] = 1

    project: str = ""
    asset: str = ""
    spec: AssetSpec = Field(default_factory=AssetSpec)
    iterations: list[Iteration] = Field(default_factory=list)
    approved_version: int | None = None
    approval_notes: str = ""
    view_hashes: dict[str, str] = Field(default_factory=dict)

    def version(self, number: int) -> Iteration | None:
        return next((it for it in self.iterations if it.version == number), None)


# The prompt library (grimoire/library/{family}/{name}.md) ------------------------------------------
class LibraryEntry(_Data):
    name: str
    family: str
    positive: str
    negative: str = ""
    settings: PromptSettings | None = None
    loras: list[LoraUse] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    notes: str = ""
    source: str = Field(default="", description="project/asset/version it came from, if any.")
    saved_at: datetime
    view_hash: str = ""


class LibraryDocument(Document):
    """``grimoire/.state/art-library.json``: every saved prompt."""

    SCHEMA_VERSION: ClassVar[int] = 1

    entries: list[LibraryEntry] = Field(default_factory=list)

    def find(self, family: str, name: str) -> LibraryEntry | None:
        key = name.casefold()
        return next((e for e in self.entries if e.family == family and e.name.casefold() == key), None)


# Answers ------------------------------------------------------------------------------------------
class SubmitSuggestion(_Data):
    """Exactly the arguments of ``comfyui_submit`` for this prompt: pass them as they are.

    With ``project``, ``asset`` and ``version``, comfyui_submit records the seed and pictures on that version.
    """

    template: str
    params: dict[str, Any]
    loras: list[dict[str, Any]] = Field(default_factory=list)
    project: str | None = None
    asset: str | None = None
    version: int | None = None


class PromptAnswer(_Data):
    """What ``art_prompt`` returns."""

    draft: PromptDraft
    comfyui_submit: SubmitSuggestion | None = Field(
        default=None, description="Arguments for comfyui_submit, complete; None when no template fits the family."
    )
    submit_note: str = Field(default="", description="What to know about that template for this family.")
    family_choice: str = ""
    project: str | None = None
    asset: str | None = None
    version: int | None = Field(default=None, description="The version this prompt was logged as.")
    based_on: int | None = None
    next_step: str = ""


class IterationSummary(_Data):
    version: int
    origin: str
    based_on: int | None
    created_at: datetime
    family: str
    positive: str
    seed: int | None
    outputs: int
    feedback: str
    approved: bool


class IterationsAnswer(_Data):
    """What ``art_iterations`` returns."""

    action: str
    project: str
    asset: str
    folder: str
    spec: AssetSpec
    version_count: int = 0
    versions: list[IterationSummary] = Field(
        default_factory=list, description="Every version for 'history'; the latest three otherwise."
    )
    detail: Iteration | None = None
    approved_version: int | None = None
    draft: PromptDraft | None = Field(default=None, description="The new prompt after a revert (and adjustment).")
    comfyui_submit: SubmitSuggestion | None = Field(
        default=None, description="revert: complete comfyui_submit arguments that make the new version."
    )
    submit_note: str = Field(default="", description="What to know about that template for this family.")
    eye_suggestions: list[EyeSuggestion] = Field(
        default_factory=list, description="Taste entries to propose to the artist; confirm each with eye_update."
    )
    library_entry: LibraryEntry | None = None
    notices: list[str] = Field(default_factory=list)


class LibraryAnswer(_Data):
    """What ``art_library`` returns."""

    action: str
    entry: LibraryEntry | None = None
    path: str | None = None
    matches: list[LibraryMatch] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list)
