"""The three caption workflows: review a batch (previews + guide), write captions safely, summarise tags."""

from __future__ import annotations

import stat
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ategnatos_mcp.dataset.captions import (
    CLIP_TOKEN_LIMIT,
    CaptionRefused,
    caption_files_by_stem,
    estimate_tokens,
    normalise_caption,
    read_caption,
    split_tags,
    tag_counts,
)
from ategnatos_mcp.dataset.models import (
    CaptionItem,
    CaptionReview,
    CaptionStats,
    CaptionSummary,
    CaptionWrite,
    CaptionWriteResult,
    FileProblem,
    TagCount,
)
from ategnatos_mcp.dataset.scan import DatasetScan, is_regularisation_folder, scan_dataset
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.state import write_text_atomic

__all__ = [
    "CaptionIndex",
    "caption_guide",
    "caption_stats",
    "index_captions",
    "review_batch",
    "summarise_captions",
    "write_captions",
]


GUIDE_NOTE = "The captioning guide came with the first batch (start=0); pass include_guide=true to see it again."


def caption_guide() -> str:
    """The style-aware captioning guide, shown with the first review batch or when asked for."""
    return resources.files("ategnatos_mcp.dataset").joinpath("captioning_guide.md").read_text(encoding="utf-8")


@dataclass
class CaptionIndex:
    """Captions of a scanned dataset, by image."""

    texts: dict[str, str] = field(default_factory=dict)  # image rel -> caption text
    files: dict[str, str] = field(default_factory=dict)  # image rel -> caption file rel
    orphans: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def index_captions(scan: DatasetScan) -> CaptionIndex:
    """Read every caption file next to an image (blocking)."""
    by_stem = caption_files_by_stem(scan)
    index = CaptionIndex()
    stems = set()
    for image in scan.images:
        stems.add(image.stem_key)
        entry = by_stem.get(image.stem_key)
        if entry is None:
            continue
        index.files[image.rel] = entry.rel
        try:
            index.texts[image.rel] = read_caption(entry.path)
        except OSError:
            index.unreadable.append(entry.rel)
    index.orphans = sorted(e.rel for stem, e in by_stem.items() if stem not in stems)
    return index


def caption_stats(images: list[str], index: CaptionIndex, trigger: str | None) -> CaptionStats:
    """Coverage, empties, orphans, trigger-word placement, over-long captions and top tags."""
    stats = CaptionStats(trigger_word=trigger, orphans=index.orphans)
    texts = []
    for rel in images:
        regularisation = is_regularisation_folder(rel) and "/" in rel
        stats.regularisation_images += regularisation
        text = index.texts.get(rel)
        if text is None:
            stats.missing += 1
            if len(stats.missing_examples) < 10:
                stats.missing_examples.append(rel)
            continue
        if not text.strip():
            stats.empty.append(index.files[rel])
            continue
        stats.captioned += 1
        texts.append(text)
        if trigger and not regularisation:
            tags = [t.casefold() for t in split_tags(text)]
            if tags and tags[0] == trigger.strip().casefold():
                stats.with_trigger += 1
            else:
                stats.without_trigger += 1
        if estimate_tokens(text) > CLIP_TOKEN_LIMIT:
            stats.over_token_limit.append(index.files[rel])
    stats.top_tags = [TagCount(tag=t, count=c) for t, c in tag_counts(texts).most_common(15)]
    return stats


def _item(rel: str, index: CaptionIndex, note: str = "") -> CaptionItem:
    text = index.texts.get(rel)
    return CaptionItem(
        path=rel,
        caption=text.strip() if text is not None else None,
        caption_file=index.files.get(rel),
        tokens=estimate_tokens(text) if text else 0,
        note=note,
    )


def review_batch(
    root: Path,
    *,
    start: int,
    count: int,
    only_missing: bool,
    trigger_word: str | None,
    max_side: int,
    budget: int,
    include_guide: bool = False,
    roots: Sequence[Path] | None = None,
) -> tuple[CaptionReview, list[bytes]]:
    """The next ``count`` images from ``start`` with their captions and previews (blocking).

    The captioning guide comes with the first batch (``start`` 0) or when ``include_guide`` asks for it; later
    batches carry a one-line note instead, so a long review does not repeat it batch after batch.

    ``start`` and ``next_start`` are positions in the folder's full image list, also with ``only_missing``: the
    captions written between two batches must not shift the next batch past images nobody has seen yet.
    """
    from ategnatos_mcp.dataset.previews import make_preview

    scan = scan_dataset(root, roots=roots, tidy=True)
    index = index_captions(scan)
    wanted = [not (only_missing and index.texts.get(e.rel, "").strip()) for e in scan.images]
    positions = [i for i, keep in enumerate(wanted) if keep and i >= start]
    batch = [scan.images[i] for i in positions[:count]]
    items, previews = [], []
    for entry in batch:
        data = make_preview(entry.path, max_side=max_side, budget=budget)
        if data is None:
            items.append(_item(entry.rel, index, "cannot be opened: no preview (see dataset_audit)"))
            continue
        previews.append(data)
        items.append(_item(entry.rel, index))
    review = CaptionReview(
        dataset=str(root),
        start=start,
        next_start=positions[count] if len(positions) > count else None,
        total=sum(wanted),
        items=items,
        trigger_word=trigger_word,
        left_out=[e.rel for e in scan.outside_links],
    )
    if include_guide or start == 0:
        review.guide = caption_guide()
    else:
        review.guide_note = GUIDE_NOTE
    return review, previews


def _target(root: Path, rel: str, images: dict[str, Path], index: CaptionIndex) -> Path:
    if rel not in images:
        raise InvalidRequestError(f"'{rel}' is not an image of this dataset.")
    existing = index.files.get(rel)
    if existing is not None:
        return root / existing
    return images[rel].with_suffix(".txt")


def write_captions(
    root: Path, writes: list[CaptionWrite], *, trigger_word: str | None, roots: Sequence[Path] | None = None
) -> CaptionWriteResult:
    """Normalise and save each caption atomically next to its image; refuse the ones that would break (blocking).

    A caption file that exists keeps its permissions; a new one gets the folder's usual ones (as the images have).
    """
    scan = scan_dataset(root, roots=roots, tidy=True)
    index = index_captions(scan)
    images = {e.rel: e.path for e in scan.images}
    result = CaptionWriteResult(dataset=str(root), written=[], refused=[], warnings=[])
    seen: set[str] = set()
    for w in writes:
        rel = w.path.strip().replace("\\", "/")
        rel = rel[2:] if rel.startswith("./") else rel
        try:
            if rel in seen:
                raise CaptionRefused("this image appears twice in the request; send one caption per image")
            seen.add(rel)
            target = _target(root, rel, images, index)
            regularisation = "/" in rel and is_regularisation_folder(rel)
            text = normalise_caption(w.caption, trigger_word=None if regularisation else trigger_word)
        except (CaptionRefused, InvalidRequestError) as exc:
            message = exc.message if isinstance(exc, InvalidRequestError) else str(exc)
            result.refused.append(
                FileProblem(
                    path=rel,
                    problem="caption_refused",
                    severity="warning",
                    message=message,
                    fix="Fix the caption (or the path, as the review listed it) and send it again.",
                )
            )
            continue
        write_text_atomic(target, text + "\n", mode=_mode_for(target, images[rel]))
        index.texts[rel], index.files[rel] = text, target.relative_to(root).as_posix()
        item = _item(rel, index)
        if item.tokens > CLIP_TOKEN_LIMIT:
            result.warnings.append(
                f"{rel}: about {item.tokens} tokens; CLIP reads ~{CLIP_TOKEN_LIMIT}, the rest is cut."
            )
        result.written.append(item)
        if regularisation and trigger_word and trigger_word.strip().casefold() in _tags_of(text):
            result.warnings.append(
                f"{rel}: a regularisation image's caption holds the trigger word '{trigger_word}'; describe only the "
                "class there, or the LoRA learns the trigger from these images too."
            )
    return result


def _mode_for(caption: Path, image: Path) -> int | None:
    """The permissions a caption keeps (its own), or takes from its image when new (without execute bits)."""
    for source, mask in ((caption, 0o7777), (image, 0o666)):
        try:
            return stat.S_IMODE(source.stat().st_mode) & mask
        except OSError:
            continue
    return None


def _tags_of(text: str) -> set[str]:
    return {t.casefold() for t in split_tags(text)}


def summarise_captions(root: Path, *, trigger_word: str | None, roots: Sequence[Path] | None = None) -> CaptionSummary:
    """Tag frequency and outliers across the dataset's captions (blocking)."""
    scan = scan_dataset(root, roots=roots, tidy=True)
    index = index_captions(scan)
    rels = [e.rel for e in scan.images]
    stats = caption_stats(rels, index, trigger_word)
    captioned = [_item(rel, index) for rel in rels if index.texts.get(rel, "").strip()]
    captioned.sort(key=lambda i: (i.tokens, i.path))
    counts = tag_counts(index.texts[i.path] for i in captioned)
    return CaptionSummary(
        dataset=str(root),
        stats=stats,
        tag_count=len(counts),
        rare_tags=sorted(t for t, c in counts.items() if c == 1)[:30] if len(captioned) >= 5 else [],
        shortest=captioned[:3],
        longest=captioned[-3:][::-1],
        median_tokens=int(statistics.median(i.tokens for i in captioned)) if captioned else 0,
    )
