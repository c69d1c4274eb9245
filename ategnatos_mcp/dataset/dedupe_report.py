"""The dedupe answer: a page of groups with one contact sheet each, look-alikes to review, and plain words.

An answer carries at most ``MAX_PICTURES`` pictures: the groups of this page first, then look-alike pairs while
room is left. The text names every group of the page and says how many more there are and how to list them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ategnatos_mcp.dataset.models import DedupeResult, DuplicateFile, DuplicateGroup, LookAlikePair, QuarantineResult

if TYPE_CHECKING:
    from ategnatos_mcp.dataset.dedupe import DuplicateCluster, Duplicates, LookAlike
    from ategnatos_mcp.dataset.probe import ProbeRecord

__all__ = ["MAX_PICTURES", "dedupe_answer", "dedupe_pictures", "picture_labels", "quarantine_summary"]

MAX_PICTURES = 12
_MATCH_WORDS = {"identical": "identical", "copy": "copy", "mirrored": "mirrored copy"}


def _group(c: DuplicateCluster, records: Mapping[str, ProbeRecord]) -> DuplicateGroup:
    files = [
        DuplicateFile(
            path=m.rel,
            match=m.match,  # type: ignore[arg-type]
            similarity=m.similarity,
            width=records[m.rel].display_width,
            height=records[m.rel].display_height,
            format=records[m.rel].format,
            bytes=records[m.rel].size,
        )
        for m in c.members
    ]
    return DuplicateGroup(keep=c.keep, reason=c.reason, files=files)


def dedupe_answer(
    root: Path,
    found: Duplicates,
    records: Mapping[str, ProbeRecord],
    *,
    threshold: int,
    mirror: bool,
    start: int,
    shown: int,
    left_out: list[str],
    moved: QuarantineResult | None = None,
) -> DedupeResult:
    """The structured answer (pictures are numbered here; ``dedupe_pictures`` draws them in the same order)."""
    clusters = found.clusters
    exact = sum(1 for c in clusters if all(m.match in ("keep", "identical") for m in c.members))
    page = [_group(c, records) for c in clusters[start : start + shown]]
    pairs = [LookAlikePair(a=la.a, b=la.b, mirrored=la.mirrored) for la in found.look_alikes[:shown]]
    picture = 0
    for item in [*page, *pairs]:
        if picture < MAX_PICTURES:
            picture += 1
            item.picture = picture
    result = DedupeResult(
        dataset=str(root),
        images_checked=sum(1 for r in records.values() if r.ok),
        threshold=threshold,
        mirror_aware=mirror,
        exact_groups=exact,
        near_groups=len(clusters) - exact,
        extra_files=sum(len(c.extras) for c in clusters),
        start=start,
        next_start=start + shown if start + shown < len(clusters) else None,
        groups=page,
        look_alike_pairs=len(found.look_alikes),
        look_alikes=pairs,
        left_out=left_out,
        quarantine=moved,
    )
    result.summary, result.details = _words(result, len(clusters), found.look_alikes)
    result.next_step = _next_step(result)
    return result


def _words(result: DedupeResult, total: int, look_alikes: list[LookAlike]) -> tuple[str, str]:
    """The headline (with what was moved), then every group and look-alike pair of this page, written out."""
    head = [
        f"{result.images_checked} images checked: {result.exact_groups} group(s) of identical files and "
        f"{result.near_groups} group(s) of proven copies ({result.extra_files} extra file(s) in all)."
    ]
    if look_alikes:
        head.append(
            f"{len(look_alikes)} pair(s) look alike but differ in places, so they are not treated as duplicates "
            "(nothing of them is moved unless named in files)."
        )
    head.extend(_left_out(result.left_out))
    q = result.quarantine
    if q is not None:
        head.append(
            f"Moved {len(q.moved)} file(s) (extra copies and their captions) to quarantine batch {q.batch}."
            if q.moved
            else "Nothing needed moving."
        )
        head.extend(f"Left in place: {s}" for s in q.skipped)
    lines: list[str] = []
    for n, g in enumerate(result.groups, start=result.start + 1):
        copies = ", ".join(f"{f.path} ({_MATCH_WORDS[f.match]})" for f in g.files if f.match != "keep")
        seen = f" [picture {g.picture}]" if g.picture else ""
        lines.append(f"{n}. keep {g.keep}: {g.reason}; copies: {copies}{seen}")
    if result.next_start is not None:
        lines.append(f"...and {total - result.next_start} more group(s): call again with start={result.next_start}.")
    if result.look_alikes:
        lines.append("Look-alike pairs:")
        for pair in result.look_alikes:
            seen = f" [picture {pair.picture}]" if pair.picture else ""
            lines.append(f"- {pair.a} and {pair.b}{' (mirrored)' if pair.mirrored else ''}{seen}")
        if len(look_alikes) > len(result.look_alikes):
            lines.append(f"...and {len(look_alikes) - len(result.look_alikes)} more (a larger detail lists them).")
    return "\n".join(head), "\n".join(lines)


def _left_out(names: list[str]) -> list[str]:
    if not names:
        return []
    listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return [
        f"{len(names)} linked file(s) point outside the project and were not compared: {listed}. Copy them into "
        "the dataset folder, or add the folder they are in to extra_roots in ategnatos.toml."
    ]


def _next_step(result: DedupeResult) -> str:
    if result.quarantine is not None:
        return "Undo: dataset_dedupe action='undo' (the whole batch) or action='undo' with files=[...]."
    if result.extra_files:
        return (
            "Show the artist the pictures. action='quarantine' then moves the extra copies of every group (only "
            "proven copies) and their captions aside, and action='undo' puts them back; to set aside other files "
            "(e.g. one of a look-alike pair), pass them in files with action='quarantine'."
        )
    return "No duplicates to move: go on with dataset_captions or dataset_audit."


def dedupe_pictures(root: Path, found: Duplicates, result: DedupeResult) -> list[bytes]:
    """One contact sheet per numbered group and look-alike pair, in picture order (blocking: a worker thread)."""
    from ategnatos_mcp.dataset.sheets import Tile, contact_sheet

    sheets: list[bytes] = []
    for group in result.groups:
        if group.picture is not None:
            tiles = [
                Tile(root / f.path, f.path, "keep" if f.match == "keep" else _MATCH_WORDS[f.match], f.match == "keep")
                for f in sorted(group.files, key=lambda f: f.match != "keep")
            ]
            sheets.append(contact_sheet(tiles))
    sheets.extend(
        contact_sheet([Tile(root / pair.a, pair.a, "look-alike"), Tile(root / pair.b, pair.b, "look-alike")])
        for pair in result.look_alikes
        if pair.picture is not None
    )
    return sheets


def picture_labels(result: DedupeResult) -> list[str]:
    """What each contact sheet shows, in picture order (the text and the JSON name them the same way)."""
    named: dict[int, str] = {}
    for n, g in enumerate(result.groups, start=result.start + 1):
        if g.picture is not None:
            named[g.picture] = f"group {n}: {', '.join(f.path for f in g.files)} (keep {g.keep})"
    for pair in result.look_alikes:
        if pair.picture is not None:
            named[pair.picture] = f"look-alike pair: {pair.a} and {pair.b}"
    return [named[k] for k in sorted(named)]


def quarantine_summary(q: QuarantineResult) -> tuple[str, str]:
    """What an undo, or a quarantine of files the artist named, did, in plain words; and what to do next."""
    if q.action == "undo":
        lines = [f"Restored {len(q.moved)} file(s) from quarantine ({q.batch}), byte for byte."]
        step = "Check the dataset again with dataset_audit."
    else:
        lines = [
            f"Set aside {len(q.moved)} file(s) (with their captions) in quarantine batch {q.batch}: "
            + ", ".join(q.moved[:20])
            + (f" and {len(q.moved) - 20} more" if len(q.moved) > 20 else "")
            + "."
        ]
        step = "To bring them back: dataset_dedupe action='undo' with the same files, or the whole batch."
    lines += [f"Left in place: {s}" for s in q.skipped]
    return "\n".join(lines), step
