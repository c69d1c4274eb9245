"""Results of the dataset tools: what the artist (and Claude) reads back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "AuditResult",
    "BucketCount",
    "CaptionItem",
    "CaptionReview",
    "CaptionStats",
    "CaptionSummary",
    "CaptionWrite",
    "CaptionWriteResult",
    "ConceptSpec",
    "DedupeResult",
    "DuplicateFile",
    "DuplicateGroup",
    "FileProblem",
    "LookAlikePair",
    "QuarantineEntry",
    "QuarantineResult",
    "ResolutionSummary",
    "StructureResult",
    "TagCount",
]

Severity = Literal["blocking", "warning", "note"]


class FileProblem(BaseModel):
    """One problem with one file, with what to do about it."""

    path: str = Field(description="Relative to the dataset folder.")
    problem: str = Field(description="Short code, e.g. 'unreadable', 'too_small', 'cmyk'.")
    severity: Severity
    message: str
    fix: str


class ResolutionSummary(BaseModel):
    """Sizes as displayed (after EXIF rotation), readable images only."""

    smallest_side_min: int = 0
    smallest_side_median: int = 0
    longest_side_max: int = 0
    square: int = 0
    portrait: int = 0
    landscape: int = 0
    extreme: int = Field(default=0, description="Aspect ratio beyond 1:3.")


class BucketCount(BaseModel):
    """A kohya training bucket and how many images land in it."""

    width: int
    height: int
    images: int


class TagCount(BaseModel):
    tag: str
    count: int


class CaptionStats(BaseModel):
    """Caption coverage and quality across the dataset."""

    captioned: int = 0
    missing: int = 0
    missing_examples: list[str] = Field(default_factory=list)
    empty: list[str] = Field(default_factory=list)
    orphans: list[str] = Field(default_factory=list, description="Caption files with no image.")
    trigger_word: str | None = None
    with_trigger: int = 0
    without_trigger: int = 0
    regularisation_images: int = Field(
        default=0, description="Images in regularisation folders (e.g. 1_reg): the trigger word is not expected there."
    )
    over_token_limit: list[str] = Field(default_factory=list)
    top_tags: list[TagCount] = Field(default_factory=list)


class DuplicateFile(BaseModel):
    path: str
    match: Literal["keep", "identical", "copy", "mirrored"] = Field(
        description="keep: the file to keep; identical: the same bytes; copy: proven the same picture "
        "(re-saved, resized, cropped, colour-shifted or squashed); mirrored: the same picture flipped."
    )
    similarity: float = Field(description="0-1, how alike at a glance (32x32 structure) to its closest match.")
    width: int
    height: int
    format: str
    bytes: int


class DuplicateGroup(BaseModel):
    """Files proven to show the same picture; keep one, the rest would overweight it in training."""

    keep: str
    reason: str = Field(description="Why this file is the one to keep.")
    files: list[DuplicateFile]
    picture: int | None = Field(default=None, description="Which picture of this answer shows the group (1 = first).")


class LookAlikePair(BaseModel):
    """Two files that look alike but differ in places: not duplicates, never moved without being named."""

    a: str
    b: str
    mirrored: bool = False
    picture: int | None = Field(default=None, description="Which picture of this answer shows the pair (1 = first).")


class QuarantineEntry(BaseModel):
    """One line of ``quarantine/manifest.json``: a file moved aside, and how to prove it comes back unchanged."""

    original: str = Field(description="Where the file was, relative to the dataset.")
    quarantined: str = Field(description="Where it is now, relative to the dataset.")
    sha256: str
    reason: str
    batch: str
    caption_of: str | None = Field(default=None, description="For a caption: the image it travelled with.")
    pending: bool = Field(default=False, description="Journal: planned, and maybe moved, when the batch was cut short.")
    restored: bool = False


class QuarantineResult(BaseModel):
    """Files moved into (or back out of) ``quarantine/``. Nothing is ever deleted."""

    action: Literal["quarantine", "undo"]
    batch: str | None = None
    moved: list[str] = Field(default_factory=list, description="The files moved (paths they have in the dataset).")
    skipped: list[str] = Field(default_factory=list, description="Files left where they are, with the reason.")
    manifest: str = ""


class DedupeResult(BaseModel):
    dataset: str
    complete: bool = Field(default=True, description="False: still reading images in the background; call again.")
    images_read: int = 0
    images_checked: int = 0
    threshold: int = 10
    mirror_aware: bool = False
    exact_groups: int = Field(default=0, description="Groups of byte-identical files.")
    near_groups: int = Field(default=0, description="Groups with proven copies that are not byte-identical.")
    extra_files: int = Field(default=0, description="Files beyond the one kept per group.")
    start: int = Field(default=0, description="Index of the first group listed here.")
    next_start: int | None = Field(default=None, description="Pass as start to list the next groups.")
    groups: list[DuplicateGroup] = Field(default_factory=list)
    look_alike_pairs: int = Field(default=0, description="Pairs that look alike but are not proven copies.")
    look_alikes: list[LookAlikePair] = Field(default_factory=list)
    left_out: list[str] = Field(
        default_factory=list, description="Linked files pointing outside the project: not read, not compared."
    )
    quarantine: QuarantineResult | None = None
    # The answer's words, which the adapter puts into both views (not dumped again): the headline, the groups
    # written out (the JSON carries them as ``groups``), and what to do next.
    summary: str = Field(default="", exclude=True)
    details: str = Field(default="", exclude=True)
    next_step: str = Field(default="", exclude=True)


class AuditResult(BaseModel):
    """The gate-1 audit: what is wrong, what to do, and GO or NO-GO."""

    dataset: str
    complete: bool = Field(default=True, description="False: still reading images in the background; call again.")
    images_read: int = Field(default=0, description="While incomplete: images read so far.")
    layout: Literal["flat", "kohya", "mixed"] = "flat"
    concepts: dict[str, int] = Field(default_factory=dict, description="Kohya folder -> repeats.")
    fingerprint: str = ""
    go: bool = False
    reasons: list[str] = Field(default_factory=list, description="Why NO-GO (blocking problems); empty for GO.")
    recommendations: list[str] = Field(default_factory=list)
    images: int = 0
    readable: int = 0
    formats: dict[str, int] = Field(default_factory=dict)
    target_resolution: int = 1024
    resolution: ResolutionSummary = Field(default_factory=ResolutionSummary)
    problem_counts: dict[str, int] = Field(default_factory=dict)
    problems: list[FileProblem] = Field(default_factory=list)
    problems_shown: int = 0
    buckets: list[BucketCount] = Field(default_factory=list)
    sparse_buckets: list[BucketCount] = Field(default_factory=list)
    captions: CaptionStats = Field(default_factory=CaptionStats)
    duplicate_groups: int = 0
    duplicate_extras: int = 0
    report_path: str | None = None
    decoded: int = Field(default=0, description="Images decoded this run (the rest came from the cache).")
    quarantine: QuarantineResult | None = Field(default=None, description="Unreadable files moved aside, if asked.")
    left_out: list[str] = Field(
        default_factory=list, description="Linked files pointing outside the project: not read, not counted."
    )


class CaptionItem(BaseModel):
    path: str
    caption: str | None
    caption_file: str | None
    tokens: int = Field(default=0, description="Estimated CLIP tokens (about 75 are read).")
    note: str = ""


class CaptionReview(BaseModel):
    dataset: str
    start: int
    next_start: int | None
    total: int
    items: list[CaptionItem]
    trigger_word: str | None
    guide: str | None = Field(
        default=None,
        description="The style-aware captioning guide: sent with the first batch (start=0) or when asked for; "
        "later batches leave it out and say where to find it in guide_note.",
    )
    guide_note: str | None = Field(default=None, description="Where to find the guide when it is left out.")
    left_out: list[str] = Field(
        default_factory=list, description="Linked files pointing outside the project: not shown, not counted."
    )


class CaptionWrite(BaseModel):
    """One caption to save."""

    path: str = Field(description="The image, relative to the dataset folder (as the review listed it).")
    caption: str = Field(description="The caption: content and style, comma-separated or natural language.")


class CaptionWriteResult(BaseModel):
    dataset: str
    written: list[CaptionItem]
    refused: list[FileProblem]
    warnings: list[str]


class CaptionSummary(BaseModel):
    dataset: str
    stats: CaptionStats
    tag_count: int
    rare_tags: list[str] = Field(description="Tags used once: typos or one-off details.")
    shortest: list[CaptionItem]
    longest: list[CaptionItem]
    median_tokens: int


class StructureResult(BaseModel):
    """A kohya ``{repeats}_{name}`` layout made from flat folders."""

    output: str
    concepts: dict[str, int] = Field(description="Folder -> images in it.")
    repeats: dict[str, int]
    linked: int
    copied: int
    unchanged: int
    method: Literal["hardlink", "copy", "mixed", "none"]
    notes: list[str]


class ConceptSpec(BaseModel):
    """Another folder to lay out beside the main one (e.g. regularisation images)."""

    path: str = Field(description="A flat folder of images (and captions).")
    name: str = Field(description="Concept name, e.g. 'reg' or 'woman'.")
    repeats: int | None = Field(default=None, ge=1, le=1000, description="Leave empty to compute it.")
