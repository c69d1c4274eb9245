"""Kohya-style aspect-ratio bucketing: which training bucket each image falls into, and which are nearly empty.

Mirrors kohya sd-scripts (``make_bucket_resolutions`` + nearest aspect ratio): buckets keep about the
base resolution's area, sides between ``min_side`` and ``max_side`` in steps of ``step``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable

__all__ = ["Bucketing", "make_buckets"]


def make_buckets(
    resolution: int, *, min_side: int = 256, max_side: int | None = None, step: int = 64
) -> list[tuple[int, int]]:
    """All ``(width, height)`` buckets for a base resolution, sorted by aspect ratio."""
    max_side = max_side or resolution * 2
    max_area = resolution * resolution
    square = int(math.sqrt(max_area) // step) * step
    resos = {(square, square)}
    width = min_side
    while width <= max_side:
        height = min(max_side, int((max_area // width) // step) * step)
        if height >= min_side:
            resos.add((width, height))
            resos.add((height, width))
        width += step
    return sorted(resos, key=lambda r: (r[0] / r[1], r[0]))


class Bucketing:
    """Assigns images to the bucket with the nearest aspect ratio (as kohya does)."""

    def __init__(self, resolution: int, *, min_side: int = 256, max_side: int | None = None, step: int = 64) -> None:
        self.resolution = resolution
        self.buckets = make_buckets(resolution, min_side=min_side, max_side=max_side, step=step)
        self._ratios = [w / h for w, h in self.buckets]

    def bucket_for(self, width: int, height: int) -> tuple[int, int]:
        """The bucket an image of this (displayed) size trains in."""
        ratio = width / height
        i = bisect_left(self._ratios, ratio)
        candidates = [j for j in (i - 1, i) if 0 <= j < len(self._ratios)]
        best = min(candidates, key=lambda j: abs(self._ratios[j] - ratio))
        return self.buckets[best]

    def count(self, sizes: Iterable[tuple[int, int]]) -> Counter[tuple[int, int]]:
        """How many images land in each bucket."""
        return Counter(self.bucket_for(w, h) for w, h in sizes)
