"""The art data files as models: the model database (``data/model_families.json``: prompt style, facts with
sources, settings, sizes per family) and the feedback map (``data/feedback.json``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Adjustment",
    "ComfyUIHandoff",
    "EyeSuggestion",
    "Fact",
    "FactKey",
    "Family",
    "FamilyDatabase",
    "FamilySettings",
    "FeedbackMap",
    "FeedbackRule",
    "PromptStyle",
    "Source",
]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


PromptStyle = Literal["tags", "sentences"]


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


FeedbackRule.model_rebuild()
