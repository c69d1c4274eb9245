"""Exact and near-duplicate groups from probe records, without a Python loop over every pair.

1. Exact: the same sha256.
2. Candidates: 64-bit perceptual hashes compared in numpy blocks (XOR + popcount), a whole row of
   the distance matrix at a time, optionally against the mirrored hash too.
3. Second check on candidates only, for precision: the coarse colour layout must agree and the
   32x32 structure must correlate (allowing a shift of a few pixels, for crops).
Groups are the connected components of confirmed pairs; the file to keep is the largest, least
compressed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ategnatos_mcp.dataset.probe import ProbeRecord

__all__ = ["DuplicateCluster", "Member", "find_duplicates"]

_BLOCK = 256  # rows of the distance matrix at a time: 256 x n x 8 bytes stays small at n = 10,000
SEARCH_MARGIN = 8  # candidates reach this far past the threshold: crops move the hash, the second check decides
MAX_GAIN = 0.25  # |log| of the per-channel brightness ratio: a colour-corrected copy stays within ~28 %
MAX_LAYOUT_DIFF = 0.12  # mean difference of the gain-normalised 4x4 colour layout (relative units)
MAX_ASPECT_CHANGE = 0.1  # |log(aspect a / aspect b)|: a copy keeps its shape within ~10 %
MIN_STRUCTURE = 0.5  # normalised correlation of the 32x32 structure, best over small shifts
_SHIFT = 2
_CONFIRM_CHUNK = 8192
_LOSSLESS = {"PNG", "TIFF", "BMP"}


@dataclass
class Member:
    """One file of a duplicate group and how it matched."""

    rel: str
    match: str  # "keep" | "identical" | "near" | "mirrored"
    similarity: float  # 0-1, against the best-matching file in the group


@dataclass
class DuplicateCluster:
    """A group of files showing the same picture."""

    keep: str
    reason: str
    members: list[Member] = field(default_factory=list)

    @property
    def extras(self) -> list[str]:
        return [m.rel for m in self.members if m.match != "keep"]


def _pairs_within(hashes: np.ndarray, others: np.ndarray, limit: int, *, skip_self: bool) -> np.ndarray:
    """Index pairs (i, j) with popcount(hashes[i] ^ others[j]) <= limit; only i < j when ``skip_self``."""
    n = len(hashes)
    found: list[np.ndarray] = []
    for start in range(0, n, _BLOCK):
        block = hashes[start : start + _BLOCK]
        first = start if skip_self else 0  # the triangle: rows before this block were compared already
        close = np.bitwise_count(block[:, None] ^ others[None, first:]) <= limit
        # flatnonzero + divmod: much faster than a 2-D nonzero on a mostly-False matrix.
        rows, cols = np.divmod(np.flatnonzero(close), len(others) - first)
        rows, cols = rows + start, cols + first
        keep = cols > rows if skip_self else cols != rows
        found.append(np.stack([rows[keep], cols[keep]], axis=1))
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)


def _normalise(windows: np.ndarray) -> np.ndarray:
    flat = windows.reshape(len(windows), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    return flat / (np.linalg.norm(flat, axis=1, keepdims=True) + 1e-6)


def _structure(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Best normalised correlation of (k, 32, 32) thumbnail pairs over shifts of up to ``_SHIFT`` pixels."""
    side = a.shape[1]
    best = np.full(len(a), -1.0, dtype=np.float32)
    for dy in range(-_SHIFT, _SHIFT + 1):
        for dx in range(-_SHIFT, _SHIFT + 1):
            wa = a[:, max(0, dy) : side + min(0, dy), max(0, dx) : side + min(0, dx)]
            wb = b[:, max(0, -dy) : side + min(0, -dy), max(0, -dx) : side + min(0, -dx)]
            corr = (_normalise(wa) * _normalise(wb)).sum(axis=1)
            np.maximum(best, corr, out=best)
    return best


@dataclass
class _Features:
    hashes: np.ndarray
    mirrored: np.ndarray | None
    thumbs: np.ndarray
    colours: np.ndarray
    log_aspect: np.ndarray


def _confirm_chunk(pairs: np.ndarray, mirrored: bool, f: _Features) -> tuple[np.ndarray, np.ndarray]:
    a, b = pairs[:, 0], pairs[:, 1]
    same_shape = np.abs(f.log_aspect[a] - f.log_aspect[b]) <= MAX_ASPECT_CHANGE
    pairs, a, b = pairs[same_shape], a[same_shape], b[same_shape]
    a_col, b_col = f.colours[a], f.colours[b]
    if mirrored:
        a_col = a_col[:, :, ::-1, :]
    a_mean, b_mean = a_col.mean(axis=(1, 2)) + 1.0, b_col.mean(axis=(1, 2)) + 1.0
    gain = np.abs(np.log(b_mean / a_mean)).max(axis=1)
    layout = np.abs(a_col / a_mean[:, None, None, :] - b_col / b_mean[:, None, None, :]).mean(axis=(1, 2, 3))
    pairs = pairs[(gain <= MAX_GAIN) & (layout <= MAX_LAYOUT_DIFF)]
    if not len(pairs):  # numpy cannot reshape an empty stack of windows
        return pairs, np.empty(0, dtype=np.float32)
    a_thumb = f.thumbs[pairs[:, 0]]
    if mirrored:
        a_thumb = a_thumb[:, :, ::-1]
    sims = _structure(a_thumb, f.thumbs[pairs[:, 1]])
    ok = sims >= MIN_STRUCTURE
    return pairs[ok], sims[ok]


def _confirm(pairs: np.ndarray, mirrored: bool, f: _Features) -> tuple[np.ndarray, np.ndarray]:
    """The pairs that pass the second check, with their structure similarity.

    Look-alike art gives hundreds of thousands of candidates at n = 10,000: checked in chunks so memory stays flat.
    """
    kept, sims = [np.empty((0, 2), dtype=np.int64)], [np.empty(0, dtype=np.float32)]
    for start in range(0, len(pairs), _CONFIRM_CHUNK):
        ok, sim = _confirm_chunk(pairs[start : start + _CONFIRM_CHUNK], mirrored, f)
        kept.append(ok)
        sims.append(sim)
    return np.concatenate(kept), np.concatenate(sims)


class _Components:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def _keeper(rels: list[str], records: Mapping[str, ProbeRecord]) -> tuple[str, str]:
    def score(rel: str) -> tuple[int, int, int, str]:
        r = records[rel]
        return (r.display_width * r.display_height, r.format in _LOSSLESS, r.size, _neg(rel))

    best = max(rels, key=score)
    r = records[best]
    others = [records[x] for x in rels if x != best]
    if all(o.sha256 == r.sha256 for o in others):
        return best, "identical copies: kept the first by name"
    if any(o.display_width * o.display_height < r.display_width * r.display_height for o in others):
        reason = f"largest ({r.display_width}x{r.display_height})"
    elif r.format in _LOSSLESS and any(o.format not in _LOSSLESS for o in others):
        reason = f"same size, saved without loss ({r.format})"
    else:
        reason = "same size, least compressed (biggest file)"
    return best, reason


def _neg(rel: str) -> str:
    # max() picks the highest score: invert the name so that, all else equal, the first name wins.
    return "".join(chr(0x10FFFF - ord(c)) for c in rel)


def find_duplicates(
    records: Mapping[str, ProbeRecord], *, threshold: int = 10, mirror: bool = False
) -> list[DuplicateCluster]:
    """Duplicate groups among readable images (blocking: run it in a worker thread).

    ``threshold`` is the perceptual-hash distance (of 64 bits) a close copy may have; the search reaches
    ``SEARCH_MARGIN`` further and lets the second check decide. ``mirror`` also matches mirrored copies.
    """
    rels = sorted(rel for rel, r in records.items() if r.ok)
    n = len(rels)
    if n < 2:
        return []
    recs = [records[rel] for rel in rels]
    f = _Features(
        hashes=np.array([r.phash for r in recs], dtype=np.uint64),
        mirrored=np.array([r.phash_mirror for r in recs], dtype=np.uint64) if mirror else None,
        thumbs=np.stack([np.frombuffer(r.thumb, np.uint8).reshape(32, 32) for r in recs]).astype(np.float32),
        colours=np.stack([np.frombuffer(r.color, np.uint8).reshape(4, 4, 3) for r in recs]).astype(np.float32),
        log_aspect=np.log(np.array([max(r.display_width, 1) / max(r.display_height, 1) for r in recs])),
    )
    limit = threshold + SEARCH_MARGIN

    edges: dict[tuple[int, int], tuple[str, float]] = {}
    by_sha: dict[str, int] = {}
    for i, r in enumerate(recs):
        first = by_sha.setdefault(r.sha256, i)
        if first != i:
            edges[(first, i)] = ("identical", 1.0)
    pairs, sims = _confirm(_pairs_within(f.hashes, f.hashes, limit, skip_self=True), False, f)
    for (i, j), sim in zip(pairs.tolist(), sims.tolist(), strict=True):
        edges.setdefault((i, j), ("near", sim))
    if f.mirrored is not None:
        pairs, sims = _confirm(_pairs_within(f.mirrored, f.hashes, limit, skip_self=False), True, f)
        for (i, j), sim in zip(pairs.tolist(), sims.tolist(), strict=True):
            key = (min(i, j), max(i, j))
            if key not in edges:
                edges[key] = ("mirrored", sim)
    return _clusters(rels, records, edges)


def _clusters(
    rels: list[str], records: Mapping[str, ProbeRecord], edges: dict[tuple[int, int], tuple[str, float]]
) -> list[DuplicateCluster]:
    comps = _Components(len(rels))
    for i, j in edges:
        comps.join(i, j)
    groups: dict[int, list[int]] = {}
    for i in {k for edge in edges for k in edge}:
        groups.setdefault(comps.find(i), []).append(i)
    clusters = []
    for members in groups.values():
        names = sorted(rels[i] for i in members)
        keep, reason = _keeper(names, records)
        k = rels.index(keep)
        cluster = DuplicateCluster(keep=keep, reason=reason)
        for i in sorted(members, key=lambda m: rels[m]):
            if i == k:
                cluster.members.append(Member(rel=rels[i], match="keep", similarity=1.0))
                continue
            match, sim = edges.get((min(i, k), max(i, k))) or _best_edge(i, edges)
            if records[rels[i]].sha256 == records[keep].sha256:
                match, sim = "identical", 1.0
            cluster.members.append(Member(rel=rels[i], match=match, similarity=round(float(sim), 3)))
        clusters.append(cluster)
    clusters.sort(key=lambda c: c.keep)
    return clusters


def _best_edge(i: int, edges: dict[tuple[int, int], tuple[str, float]]) -> tuple[str, float]:
    touching = [v for (a, b), v in edges.items() if i in (a, b)]
    return max(touching, key=lambda v: v[1])
