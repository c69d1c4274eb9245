"""The art domain's models: the model database and feedback map (data files), prompts, iterations, the library."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

PromptStyle = Literal["tags", "sentences"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The model database (art/data/model_families.json) ------------------------------------------------
class Source(_Data):
    """Where a fact in the data comes from."""

    title: str
    url: str


class FamilySettings(_Data):
    """Recommended sampler settings, in ComfyUI's names."""

    sampler: str
    scheduler: str
    steps: int = Field(gt=0)
    cfg: float = Field(gt=0)
    guidance: float | None = Field(default=None, description="Flux's distilled guidance (FluxGuidance node).")
    clip_skip: int | None = Field(default=None, description="1 = last CLIP layer; None where it does not apply.")


FactKey = Literal[
    "prompt_style", "quality_tags", "score_tags", "safety", "weights", "negative", "clip_skip", "guidance",
    "sizes", "settings",
]  # fmt: skip


class Fact(_Data):
    """One thing we tell the artist about a family, word for word, and where it comes from."""

    choice: str = Field(description="The choice it explains, e.g. 'booru tags' or 'clip skip 2'.")
    text: str = Field(min_length=10)
    sources: list[int] = Field(min_length=1, description="Indexes into the family's `sources`.")


class ComfyUIHandoff(_Data):
    """Which built-in ComfyUI template generates this family, and how our settings map onto its parameters."""

    template: str
    params: dict[str, str] = Field(description="Our field (positive, negative, width, steps...) -> template parameter.")
    checkpoint_param: str | None = None
    note: str = ""


class Family(_Data):
    """One model family: how it wants to be prompted and what settings suit it.

    ``name`` and ``aliases`` come from the shared catalogue (``ategnatos_mcp/families``), not from this file.
    """

    id: str = Field(pattern=r"^[a-z0-9]+$")
    name: str
    aliases: list[str] = Field(default_factory=list)
    architecture: str
    prompt_style: PromptStyle
    weight_syntax: bool = Field(description="Whether (term:1.2) emphasis is honoured.")
    negative_prompt: bool = Field(description="Whether the usual workflow uses a negative prompt at all.")
    score_tags: list[str] = Field(default_factory=list)
    quality_tags: list[str] = Field(default_factory=list)
    default_negative: list[str] = Field(default_factory=list)
    safety_tags: list[str] = Field(default_factory=list, description="Tags that keep results safe for work.")
    safety_negative: list[str] = Field(default_factory=list, description="Negatives that keep results safe for work.")
    settings: FamilySettings
    native_resolution: tuple[int, int]
    resolutions: dict[str, tuple[int, int]] = Field(description="Aspect ratio 'W:H' -> pixel size.")
    comfyui: ComfyUIHandoff | None = Field(default=None, description="None: no built-in template yet.")
    token_window: int | None = Field(
        default=None, description="CLIP reads prompts in chunks of this many tokens; None for T5-led families."
    )
    tips: list[str] = Field(default_factory=list)
    sources: list[Source] = Field(min_length=1)
    facts: dict[FactKey, Fact] = Field(description="What we tell the artist about this family, with sources.")

    @property
    def weight_note(self) -> str:
        return self.facts["weights"].text

    @property
    def negative_note(self) -> str:
        return self.facts["negative"].text

    @model_validator(mode="after")
    def _check_table(self) -> Family:
        if "1:1" not in self.resolutions:
            raise ValueError(f"{self.id}: the resolution table needs a 1:1 entry")
        for ratio, (width, height) in self.resolutions.items():
            if width % 8 or height % 8:
                raise ValueError(f"{self.id}: {ratio} size {width}x{height} is not a multiple of 8")
        return self

    @model_validator(mode="after")
    def _check_facts(self) -> Family:
        needed: set[str] = {"prompt_style", "weights", "negative", "sizes", "settings"}
        needed |= {"quality_tags"} if self.quality_tags else set()
        needed |= {"score_tags"} if self.score_tags else set()
        needed |= {"safety"} if self.safety_tags or self.safety_negative else set()
        needed |= {"clip_skip"} if self.settings.clip_skip is not None else set()
        needed |= {"guidance"} if self.settings.guidance is not None else set()
        missing = sorted(needed - set(self.facts))
        if missing:
            raise ValueError(f"{self.id}: facts missing for {', '.join(missing)}")
        for key, fact in self.facts.items():
            if any(not 0 <= i < len(self.sources) for i in fact.sources):
                raise ValueError(f"{self.id}: fact '{key}' cites a source that is not listed")
        return self


class FamilyDatabase(_Data):
    """The whole model database file."""

    schema_version: int = 1
    families: list[Family]


# The feedback map (art/data/feedback.json) ---------------------------------------------------------
class Adjustment(_Data):
    """Concrete prompt and setting changes for one piece of feedback."""

    add: list[str] = Field(default_factory=list, description="Terms added to the positive prompt.")
    remove: list[str] = Field(default_factory=list, description="Terms removed from the positive prompt.")
    add_negative: list[str] = Field(default_factory=list)
    remove_negative: list[str] = Field(default_factory=list)
    emphasize: list[str] = Field(default_factory=list, description="Terms weighted up where weights are honoured.")
    cfg_delta: float = 0.0
    guidance_delta: float = Field(default=0.0, description="For families with distilled guidance (FLUX.1).")
    steps_delta: int = 0
    why: str = ""


class FeedbackRule(_Data):
    """Phrases an artist says, mapped to an adjustment (per prompt style or family where they differ)."""

    id: str
    phrases: list[str] = Field(min_length=1)
    default: Adjustment
    by_style: dict[PromptStyle, Adjustment] = Field(default_factory=dict)
    by_family: dict[str, Adjustment] = Field(default_factory=dict)
    eye_hint: EyeSuggestion | None = None

    def adjustment_for(self, family: Family) -> Adjustment:
        return self.by_family.get(family.id) or self.by_style.get(family.prompt_style) or self.default


class FeedbackMap(_Data):
    schema_version: int = 1
    intensity: dict[str, float] = Field(
        default_factory=dict,
        description="Words that scale a change ('a bit' 0.5, 'much' 1.5): emphasis steps and setting deltas.",
    )
    rules: list[FeedbackRule]


class EyeSuggestion(_Data):
    """A taste entry Claude may propose to the artist; only ``eye_update`` writes it.

    ``action`` is the eye_update action to propose: ``add`` a new entry, or ``confirm`` the existing
    ``entry_id`` when the approval agrees with something the eye already holds. The fields are
    eye_update's arguments (action, category, text, level, terms, entry_id).
    """

    category: Literal["color", "texture", "composition", "style", "subject", "anti-preferences", "model-combos"]
    text: str
    level: Literal["prefer", "avoid", "never"] = "prefer"
    terms: list[str] = Field(default_factory=list)
    reason: str = ""
    action: Literal["add", "confirm"] = "add"
    entry_id: str | None = None
    note: str = Field(default="", description="eye_update's `note`: the evidence (approved version, images).")


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


FeedbackRule.model_rebuild()
