"""Gate 1: read the dataset once and decide GO or NO-GO, with reasons and recommendations."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread

from ategnatos_mcp.dataset.buckets import Bucketing
from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.captioning import CaptionIndex, caption_stats, index_captions
from ategnatos_mcp.dataset.models import AuditResult, BucketCount, CaptionStats, FileProblem, ResolutionSummary
from ategnatos_mcp.dataset.problems import EXTREME_ASPECT, file_problems, unreadable_problem
from ategnatos_mcp.dataset.runner import ProbeRunner
from ategnatos_mcp.dataset.scan import IMAGE_EXTENSIONS, DatasetScan, fingerprint_of, scan_dataset
from ategnatos_mcp.dataset.structure import unfinished_layout
from ategnatos_mcp.progress import Progress

if TYPE_CHECKING:
    from ategnatos_mcp.dataset.dedupe import DuplicateCluster
    from ategnatos_mcp.dataset.probe import ProbeRecord

__all__ = [
    "AuditOptions",
    "LoadedDataset",
    "ProofBook",
    "audit_loaded",
    "left_out_notes",
    "load_dataset",
    "run_audit",
    "unreadable_files",
]

MIN_IMAGES = 10
SPARSE_BUCKET = 2  # a bucket with this many images or fewer is nearly empty


@dataclass
class AuditOptions:
    resolution: int = 1024
    trigger_word: str | None = None
    threshold: int = 10
    problems_shown: int = 25
    quarantine_unreadable: bool = False


class ProofBook(dict[tuple[str, str, bool], float]):
    """Duplicate proofs by (sha256 a, sha256 b, mirrored): those known, and those made since (``fresh``, to store)."""

    def __init__(self, known: dict[tuple[str, str, bool], float]) -> None:
        super().__init__(known)
        self.fresh: dict[tuple[str, str, bool], float] = {}

    def __setitem__(self, key: tuple[str, str, bool], value: float) -> None:
        super().__setitem__(key, value)
        self.fresh[key] = value

    def take_fresh(self) -> dict[tuple[str, str, bool], float]:
        fresh, self.fresh = self.fresh, {}
        return fresh


@dataclass
class LoadedDataset:
    """A scan plus a probe record for every image in it."""

    scan: DatasetScan
    records: dict[str, ProbeRecord]
    decoded: int
    captions: CaptionIndex = field(default_factory=CaptionIndex)
    proofs: ProofBook = field(default_factory=lambda: ProofBook({}))  # duplicate proofs by contents (see jobs.py)

    @property
    def mtimes(self) -> dict[str, int]:
        return {e.rel: e.mtime_ns for e in self.scan.images}


def unreadable_files(loaded: LoadedDataset) -> dict[str, str]:
    """Image files that cannot be opened, with the reason (what ``quarantine_unreadable`` moves)."""
    found = {rel: f"cannot be opened ({r.error})" for rel, r in loaded.records.items() if r.error is not None}
    for rel, reason in loaded.scan.unreadable:
        if Path(rel).suffix.lower() in IMAGE_EXTENSIONS:
            found[rel] = f"cannot be read ({reason})"
    return found


async def load_dataset(
    root: Path,
    *,
    cache: ProbeCache,
    runner: ProbeRunner,
    progress: Progress | None = None,
    roots: Sequence[Path] | None = None,
) -> LoadedDataset:
    """Scan, probe every image (cache first) and read every caption."""
    scan = await anyio.to_thread.run_sync(lambda: scan_dataset(root, roots=roots))
    records, decoded = await runner.probe(scan.images, cache, progress)
    captions = await anyio.to_thread.run_sync(index_captions, scan)
    return LoadedDataset(scan=scan, records=records, decoded=decoded, captions=captions)


def left_out_notes(scan: DatasetScan, shown: int = 5) -> list[str]:
    """Plain sentences about the links the walk did not follow (the same words in every dataset tool)."""
    notes = []
    if scan.outside_links:
        names = [e.rel for e in scan.outside_links]
        listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
        notes.append(
            f"{len(names)} linked file(s) point outside the project and were left out: {listed}. Copy them into "
            "the dataset folder, or add the folder they are in to extra_roots in ategnatos.toml."
        )
    if scan.skipped_links:
        listed = ", ".join(scan.skipped_links[:shown])
        more = f" and {len(scan.skipped_links) - shown} more" if len(scan.skipped_links) > shown else ""
        notes.append(
            f"{len(scan.skipped_links)} linked folder(s) or broken link(s) were not followed: {listed}{more}. "
            "Put the images themselves in the dataset folder."
        )
    return notes


def _resolution(records: list[ProbeRecord]) -> ResolutionSummary:
    if not records:
        return ResolutionSummary()
    summary = ResolutionSummary(
        smallest_side_min=min(min(r.display_width, r.display_height) for r in records),
        smallest_side_median=int(statistics.median(min(r.display_width, r.display_height) for r in records)),
        longest_side_max=max(max(r.display_width, r.display_height) for r in records),
    )
    for r in records:
        ratio = r.display_width / max(1, r.display_height)
        if max(ratio, 1 / max(ratio, 1e-6)) > EXTREME_ASPECT:
            summary.extreme += 1
        elif abs(ratio - 1) < 0.05:
            summary.square += 1
        elif ratio < 1:
            summary.portrait += 1
        else:
            summary.landscape += 1
    return summary


@dataclass
class _Findings:
    problems: list[FileProblem]
    counts: Counter[str]
    buckets: list[BucketCount]
    sparse: list[BucketCount]


def _findings(loaded: LoadedDataset, options: AuditOptions) -> _Findings:
    problems = [unreadable_problem(rel, "unreadable", reason) for rel, reason in loaded.scan.unreadable]
    problems += [unreadable_problem(rel, "unreadable", "caption cannot be read") for rel in loaded.captions.unreadable]
    for image in loaded.scan.images:
        problems.extend(file_problems(image.rel, loaded.records[image.rel], options.resolution))
    order = {"blocking": 0, "warning": 1, "note": 2}
    problems.sort(key=lambda p: (order[p.severity], p.problem, p.path))
    bucketing = Bucketing(options.resolution)
    readable = [r for r in loaded.records.values() if r.ok]
    counted = bucketing.count((r.display_width, r.display_height) for r in readable)
    buckets = [BucketCount(width=w, height=h, images=n) for (w, h), n in sorted(counted.items())]
    sparse = [b for b in buckets if b.images <= SPARSE_BUCKET] if len(readable) >= MIN_IMAGES else []
    return _Findings(problems, Counter(p.problem for p in problems), buckets, sparse)


def _verdict(
    readable: int, findings: _Findings, captions: CaptionStats, clusters: list[DuplicateCluster]
) -> tuple[list[str], list[str]]:
    reasons: list[str] = []
    advice: list[str] = []
    blocking = [p for p in findings.problems if p.severity == "blocking"]
    if readable == 0:
        reasons.append("No usable images were found in this folder.")
    elif readable < MIN_IMAGES:
        reasons.append(f"Only {readable} usable images; a LoRA needs at least {MIN_IMAGES} (15-50 is a good start).")
    if blocking:
        reasons.append(f"{len(blocking)} file(s) cannot be opened; training would stop on them.")
        advice.append("Move the unreadable files out of the dataset (or re-export them); see the problem list.")
    uncaptioned = captions.missing + len(captions.empty)
    if readable and uncaptioned:
        reasons.append(f"{uncaptioned} image(s) have no caption (missing or empty caption file).")
        advice.append("Caption them with dataset_captions (review mode shows the images; write mode saves).")
    counts = findings.counts
    for code, text in (
        ("too_small", "image(s) are too small for the training size: use larger versions or leave them out"),
        ("cmyk", "CMYK image(s): convert to RGB"),
        ("high_bit_depth", "16-bit image(s): save as 8-bit"),
        ("transparency", "image(s) with transparency: flatten them onto a background"),
        ("animated", "animated file(s): export the frame you want"),
        ("exif_rotated", "image(s) stored sideways: save them upright"),
        ("wrong_extension", "file(s) with the wrong extension: rename them"),
        ("extreme_aspect", "very long or narrow image(s): crop them closer to square"),
        ("grayscale", "black-and-white image(s): keep them only if that is part of the style"),
    ):
        if counts.get(code):
            advice.append(f"{counts[code]} {text}.")
    extras = sum(len(c.extras) for c in clusters)
    if clusters:
        advice.append(
            f"{len(clusters)} picture(s) appear more than once ({extras} extra copies) and would be overweighted; "
            "run dataset_dedupe to review and quarantine the extras."
        )
    if findings.sparse:
        advice.append(
            f"{len(findings.sparse)} training bucket(s) hold only 1-2 images; cropping those images to a common "
            "shape trains more evenly."
        )
    if captions.trigger_word and captions.without_trigger:
        advice.append(
            f"{captions.without_trigger} caption(s) do not start with the trigger word '{captions.trigger_word}'; "
            "dataset_captions write mode puts it first."
        )
    if captions.over_token_limit:
        advice.append(f"{len(captions.over_token_limit)} caption(s) are longer than CLIP reads (~75 tokens): shorten.")
    if captions.orphans:
        advice.append(f"{len(captions.orphans)} caption file(s) have no image: rename or remove them.")
    return reasons, advice


async def run_audit(
    root: Path,
    *,
    cache: ProbeCache,
    runner: ProbeRunner,
    options: AuditOptions,
    progress: Progress | None = None,
) -> AuditResult:
    """Audit the dataset at ``root`` (already confined by the caller)."""
    loaded = await load_dataset(root, cache=cache, runner=runner, progress=progress)
    return await audit_loaded(root, loaded, options)


async def audit_loaded(root: Path, loaded: LoadedDataset, options: AuditOptions) -> AuditResult:
    """The audit of a dataset already read."""
    from ategnatos_mcp.dataset.dedupe import find_duplicates

    readable_rels = [e.rel for e in loaded.scan.images if loaded.records[e.rel].ok]
    readable = [loaded.records[rel] for rel in readable_rels]
    findings = await anyio.to_thread.run_sync(_findings, loaded, options)
    captions = caption_stats(readable_rels, loaded.captions, options.trigger_word)
    found = await anyio.to_thread.run_sync(
        lambda: find_duplicates(
            loaded.records, threshold=options.threshold, mirror=False, mtimes=loaded.mtimes, memo=loaded.proofs
        )
    )
    clusters = found.clusters
    reasons, advice = _verdict(len(readable), findings, captions, clusters)
    advice += left_out_notes(loaded.scan)
    started = await anyio.to_thread.run_sync(unfinished_layout, root)
    if started is not None:  # a dataset_structure killed part-way: what is here is not the whole set
        reasons.insert(
            0,
            f"This kohya layout was cut short while it was being made (started {started}): images or captions "
            "may be missing.",
        )
        advice.insert(0, "Run dataset_structure again with the same folders to finish it, then audit again.")
    fingerprint = fingerprint_of(loaded.scan)
    return AuditResult(
        dataset=str(root),
        layout=loaded.scan.layout,  # type: ignore[arg-type]
        concepts=loaded.scan.concepts,
        fingerprint=fingerprint,
        go=not reasons,
        reasons=reasons,
        recommendations=advice,
        images=len(loaded.scan.images)
        + sum(Path(rel).suffix.lower() in IMAGE_EXTENSIONS for rel, _ in loaded.scan.unreadable),
        readable=len(readable),
        formats=dict(Counter(r.format for r in readable).most_common()),
        target_resolution=options.resolution,
        resolution=_resolution(readable),
        problem_counts=dict(findings.counts.most_common()),
        problems=findings.problems[: options.problems_shown],
        problems_shown=min(len(findings.problems), options.problems_shown),
        buckets=findings.buckets,
        sparse_buckets=findings.sparse,
        captions=captions,
        duplicate_groups=len(clusters),
        duplicate_extras=sum(len(c.extras) for c in clusters),
        decoded=loaded.decoded,
        left_out=[e.rel for e in loaded.scan.outside_links],
    )
