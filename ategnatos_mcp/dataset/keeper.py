"""Which file of a duplicate group to keep: the artist's own, and the answer says why.

In order: a name without copy markers (``painting_03.jpg`` over ``IMG_0003 copy.jpg``, ``Copy of painting_03.png``,
``painting_03 (1).jpg``, ``painting_03-1.jpg``), then more pixels, then the older file, then the less compressed
one (saved without loss, then the bigger file), then the first name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ategnatos_mcp.dataset.probe import ProbeRecord

__all__ = ["choose_keeper", "copy_markers"]

_LOSSLESS = {"PNG", "TIFF", "BMP"}
_MARKERS = [
    re.compile(r"(?:^|[^a-z])(?:copy|kopie|copie|copia|duplicate)(?:$|[^a-z])"),  # "x copy", "x_copy", "copy of x"
    re.compile(r"\(\d+\)\s*$"),  # "x (1)"
    re.compile(r"[-\s]\d\s*$"),  # "x-1", "x 2"
    re.compile(r"^(?:img|dsc|dscn|pxl|photo|image)[-_ ]?\d+"),  # camera and download names: "IMG_0003"
]


def copy_markers(rel: str) -> int:
    """How many signs of a copy the file's name carries (0 for an artist's own name)."""
    stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    return sum(1 for marker in _MARKERS if marker.search(stem))


@dataclass(frozen=True)
class _Candidate:
    rel: str
    markers: int
    pixels: int
    mtime_ns: int
    lossless: bool
    size: int


def _candidate(rel: str, record: ProbeRecord, mtime_ns: int) -> _Candidate:
    return _Candidate(
        rel=rel,
        markers=copy_markers(rel),
        pixels=record.display_width * record.display_height,
        mtime_ns=mtime_ns,
        lossless=record.format in _LOSSLESS,
        size=record.size,
    )


def _order(c: _Candidate) -> tuple[int, int, int, int, int]:
    return (c.markers, -c.pixels, c.mtime_ns, -int(c.lossless), -c.size)


def choose_keeper(
    rels: Sequence[str], records: Mapping[str, ProbeRecord], mtimes: Mapping[str, int]
) -> tuple[str, str]:
    """The file to keep among ``rels`` and why, in a few plain words."""
    candidates = sorted((_candidate(r, records[r], mtimes.get(r, 0)) for r in rels), key=lambda c: (_order(c), c.rel))
    best, others = candidates[0], candidates[1:]
    if all(records[o.rel].sha256 == records[best.rel].sha256 for o in others) and all(
        o.markers == best.markers for o in others
    ):
        return best.rel, "identical files: kept the first by name"
    if any(o.markers > best.markers for o in others):
        return best.rel, "the original's name (the other names look like copies)"
    r = records[best.rel]
    if any(o.pixels < best.pixels for o in others):
        return best.rel, f"the largest ({r.display_width}x{r.display_height})"
    if any(o.mtime_ns > best.mtime_ns for o in others):
        day = datetime.fromtimestamp(best.mtime_ns / 1e9, tz=UTC).strftime("%Y-%m-%d")
        return best.rel, f"the oldest (saved {day}), same size"
    if best.lossless and any(not o.lossless for o in others):
        return best.rel, f"saved without loss ({r.format}), same size"
    if any(o.size < best.size for o in others):
        return best.rel, "the least compressed (biggest file), same size"
    return best.rel, "the first by name (the files are equally good)"
