"""Duplicate groups from probe records: found by hash, proven by comparing every patch, never guessed.

1. Identical: the same sha256.
2. Candidates: 64-bit perceptual hashes compared in numpy blocks (XOR + popcount), a whole row of the
   distance matrix at a time, optionally against the mirrored hash too.
3. A glance, for speed: the shape must agree (or one is squashed to a square), and the coarse colour layout
   and the 32x32 structure must be close. One artist's paintings pass this glance by the dozen.
4. The proof (``verify.py``): after aligning the pair (crops, squashes), no 4x4 patch of the 64 px detail
   image may differ by more than a resampling explains. Only proven pairs (and identical files) make groups;
   pairs that come close without passing are look-alikes for the artist to look at, never duplicates.
Groups are the connected components of identical and proven pairs; the file to keep is chosen in ``keeper.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ategnatos_mcp.dataset.keeper import choose_keeper
from ategnatos_mcp.dataset.verify import PROVEN, Details, worst_patch

if TYPE_CHECKING:
    from ategnatos_mcp.dataset.probe import ProbeRecord

__all__ = ["Duplicates", "DuplicateCluster", "LookAlike", "Member", "VerifyMemo", "find_duplicates"]

_BLOCK = 256  # rows of the distance matrix at a time: 256 x n x 8 bytes stays small at n = 10,000
SEARCH_MARGIN = 12  # candidates reach this far past the threshold: crops move the hash, the proof decides
MAX_GAIN = 0.25  # |log| of the per-channel brightness ratio: a colour-corrected copy stays within ~28 %
MAX_LAYOUT_DIFF = 0.12  # mean difference of the gain-normalised 4x4 colour layout (relative units)
MAX_ASPECT_CHANGE = 0.1  # |log(aspect a / aspect b)|: a cropped copy keeps its shape within ~10 %
SQUARE = 0.02  # |log aspect| of a picture squashed to 1:1
MIN_STRUCTURE = 0.5  # normalised correlation of the 32x32 structure, best over small shifts
LOOK_ALIKE = 2 * PROVEN  # a pair that fails the proof by less than this is shown for review
_SHIFT = 2
_CONFIRM_CHUNK = 8192

# (sha256 of a, sha256 of b, a mirrored) -> worst patch difference. The proof is the costly step: audit and dedupe
# share it, and keyed by contents it stays true whatever is renamed, added or removed.
VerifyMemo = MutableMapping[tuple[str, str, bool], float]


@dataclass
class Member:
    """One file of a duplicate group and how it matched."""

    rel: str
    match: str  # "keep" | "identical" | "copy" | "mirrored"
    similarity: float  # 0-1 at a glance (32x32 structure), against the best-matching file in the group


@dataclass
class DuplicateCluster:
    """A group of files proven to show the same picture."""

    keep: str
    reason: str
    members: list[Member] = field(default_factory=list)

    @property
    def extras(self) -> list[str]:
        return [m.rel for m in self.members if m.match != "keep"]


@dataclass
class LookAlike:
    """Two files that look alike but differ in places: not proven copies, for the artist to look at."""

    a: str
    b: str
    mirrored: bool
    difference: float  # worst patch difference, grey levels; under PROVEN would have been a copy


@dataclass
class Duplicates:
    clusters: list[DuplicateCluster] = field(default_factory=list)
    look_alikes: list[LookAlike] = field(default_factory=list)


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


def _glance_chunk(pairs: np.ndarray, mirrored: bool, f: _Features) -> tuple[np.ndarray, np.ndarray]:
    a, b = pairs[:, 0], pairs[:, 1]
    aspect_a, aspect_b = f.log_aspect[a], f.log_aspect[b]
    squashed = (np.abs(aspect_a) <= SQUARE) | (np.abs(aspect_b) <= SQUARE)
    same_shape = (np.abs(aspect_a - aspect_b) <= MAX_ASPECT_CHANGE) | squashed
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


def _glance(pairs: np.ndarray, mirrored: bool, f: _Features) -> tuple[np.ndarray, np.ndarray]:
    """The pairs that look alike at a glance, with their structure similarity.

    Look-alike art gives hundreds of thousands of candidates at n = 10,000: checked in chunks so memory stays flat.
    """
    kept, sims = [np.empty((0, 2), dtype=np.int64)], [np.empty(0, dtype=np.float32)]
    for start in range(0, len(pairs), _CONFIRM_CHUNK):
        ok, sim = _glance_chunk(pairs[start : start + _CONFIRM_CHUNK], mirrored, f)
        kept.append(ok)
        sims.append(sim)
    return np.concatenate(kept), np.concatenate(sims)


def _prove(pairs: np.ndarray, mirrored: bool, recs: list[ProbeRecord], memo: VerifyMemo) -> np.ndarray:
    """The worst patch difference of each pair (see verify.py), from ``memo`` where known."""
    keys = [(recs[i].sha256, recs[j].sha256, mirrored) for i, j in pairs.tolist()]
    todo = [k for k, key in enumerate(keys) if key not in memo]
    if todo:
        involved = sorted({int(i) for i in pairs[todo].ravel()})
        slot = {i: s for s, i in enumerate(involved)}
        details = Details.from_bytes([recs[i].detail for i in involved])
        local = np.array([[slot[int(i)], slot[int(j)]] for i, j in pairs[todo]], dtype=np.intp).reshape(-1, 2)
        for k, score in zip(todo, worst_patch(details, local, mirrored=mirrored).tolist(), strict=True):
            memo[keys[k]] = score
    return np.array([memo[key] for key in keys], dtype=np.float32)


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


def find_duplicates(
    records: Mapping[str, ProbeRecord],
    *,
    threshold: int = 10,
    mirror: bool = False,
    mtimes: Mapping[str, int] | None = None,
    memo: VerifyMemo | None = None,
) -> Duplicates:
    """Proven duplicate groups and close look-alikes among readable images (blocking: run it in a worker thread).

    ``threshold`` is the perceptual-hash distance (of 64 bits) a close copy may have; the search reaches
    ``SEARCH_MARGIN`` further and the proof decides. ``mirror`` also matches mirrored copies. ``mtimes``
    (dataset-relative path -> mtime in ns) lets the older file be kept; ``memo`` keeps proofs for the next call.
    """
    rels = sorted(rel for rel, r in records.items() if r.ok and r.detail)
    if len(rels) < 2:
        return Duplicates()
    recs = [records[rel] for rel in rels]
    f = _Features(
        hashes=np.array([r.phash for r in recs], dtype=np.uint64),
        mirrored=np.array([r.phash_mirror for r in recs], dtype=np.uint64) if mirror else None,
        thumbs=np.stack([np.frombuffer(r.thumb, np.uint8).reshape(32, 32) for r in recs]).astype(np.float32),
        colours=np.stack([np.frombuffer(r.color, np.uint8).reshape(4, 4, 3) for r in recs]).astype(np.float32),
        log_aspect=np.log(np.array([max(r.display_width, 1) / max(r.display_height, 1) for r in recs])),
    )
    memo = {} if memo is None else memo
    limit = threshold + SEARCH_MARGIN
    edges: dict[tuple[int, int], tuple[str, float]] = {}
    by_sha: dict[str, int] = {}
    for i, r in enumerate(recs):
        first = by_sha.setdefault(r.sha256, i)
        if first != i:
            edges[(first, i)] = ("identical", 1.0)
    look_alikes: dict[tuple[int, int], LookAlike] = {}
    searches = [(False, f.hashes)] + ([(True, f.mirrored)] if f.mirrored is not None else [])
    for mirrored, hashes in searches:
        candidates = _pairs_within(hashes, f.hashes, limit, skip_self=not mirrored)
        if mirrored:  # a mirrored against b is b mirrored against a: check each pair once
            candidates = np.unique(np.sort(candidates, axis=1), axis=0).reshape(-1, 2)
        pairs, sims = _glance(candidates, mirrored, f)
        differences = _prove(pairs, mirrored, recs, memo) if len(pairs) else np.empty(0)
        for (i, j), sim, diff in zip(pairs.tolist(), sims.tolist(), differences.tolist(), strict=True):
            key = (min(i, j), max(i, j))
            if diff <= PROVEN:
                edges.setdefault(key, ("mirrored" if mirrored else "copy", sim))
            elif diff <= LOOK_ALIKE and key not in look_alikes:
                look_alikes[key] = LookAlike(a=rels[key[0]], b=rels[key[1]], mirrored=mirrored, difference=diff)
    clusters = _clusters(rels, records, edges, mtimes or {})
    grouped = {m.rel: c.keep for c in clusters for m in c.members}
    alike = [
        la for la in look_alikes.values() if la.a not in grouped or grouped.get(la.a) != grouped.get(la.b)
    ]  # two files of one proven group are not a look-alike of each other
    alike.sort(key=lambda la: (la.difference, la.a, la.b))
    return Duplicates(clusters=clusters, look_alikes=alike)


def _clusters(
    rels: list[str],
    records: Mapping[str, ProbeRecord],
    edges: dict[tuple[int, int], tuple[str, float]],
    mtimes: Mapping[str, int],
) -> list[DuplicateCluster]:
    comps = _Components(len(rels))
    for i, j in edges:
        comps.join(i, j)
    groups: dict[int, list[int]] = {}
    for i in {k for edge in edges for k in edge}:
        groups.setdefault(comps.find(i), []).append(i)
    index = {rel: i for i, rel in enumerate(rels)}
    clusters = []
    for members in groups.values():
        keep, reason = choose_keeper([rels[i] for i in members], records, mtimes)
        k = index[keep]
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
