"""Proof that two pictures are one: align them, then compare every small patch at 64 px.

A perceptual hash says two pictures look alike at a glance, and one artist's paintings all do. A copy
(re-saved, resized, cropped, colour-shifted, squashed) matches its original *everywhere* once aligned; a
different painting of the same scene differs somewhere (a house, a tree, a boat). So, for each candidate pair:

1. Compare as they are (most copies are not cropped): detail images in colour, blurred a little (copies are
   resampled differently), brightness and colour fitted per channel (a colour-shifted copy), then the
   difference measured in every 4x4 patch of 64 px, forgiving what a shift of half a pixel explains.
2. If that is not a close match, align: the crop window (85-100 % of each side, any offset) of one picture that
   best matches the other is found from brightness profiles, one axis at a time and then again with the other
   axis aligned; both ways round (A cropped from B, B from A) are compared.
3. The worst patch decides (``worst_patch``): a copy stays within a few levels everywhere; a painted
   difference stands out in its patch however small the rest of the difference is.

Detail images are square (the whole picture squeezed to 64x64), so a copy squashed to 1:1 lines up as is.
Blocking numpy work: run it in a worker thread.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["CHROMA_SIDE", "DETAIL_BYTES", "DETAIL_SIDE", "PROVEN", "VERSION", "Details", "worst_patch"]

VERSION = 1  # of the comparison: stored proofs of another version are ignored

DETAIL_SIDE = 64
CHROMA_SIDE = 32
DETAIL_BYTES = DETAIL_SIDE * DETAIL_SIDE + 2 * CHROMA_SIDE * CHROMA_SIDE  # Y at 64 px, then Cb and Cr at 32 px
_PATCH = 4  # pixels of 64 per patch side
_BUSY = 8.0  # grey levels of local contrast at which a difference counts half
_GAIN = (0.75, 1.35)  # per-channel contrast a colour-corrected copy may differ by
_MIN_SCALE = 0.85  # a crop keeps at least 85 % of each side
_SCALE_STEP = 0.0125
_OFFSET_STEP = 1 / 128
_ROUNDS = 1  # alternate estimates of the y and x crop
_BANDS = 4  # brightness profiles per axis, one per quarter of the picture across it
_CHUNK = 128


@dataclass
class Details:
    """Detail images of many pictures: luminance (n, 64, 64) and chroma (n, 2, 32, 32), uint8."""

    luma: np.ndarray
    chroma: np.ndarray

    @classmethod
    def from_bytes(cls, blobs: list[bytes]) -> Details:
        raw = np.frombuffer(b"".join(blobs), np.uint8).reshape(len(blobs), DETAIL_BYTES)
        luma = raw[:, : DETAIL_SIDE * DETAIL_SIDE].reshape(-1, DETAIL_SIDE, DETAIL_SIDE)
        chroma = raw[:, DETAIL_SIDE * DETAIL_SIDE :].reshape(-1, 2, CHROMA_SIDE, CHROMA_SIDE)
        return cls(luma=luma, chroma=chroma)


def _windows() -> np.ndarray:
    """(offset, scale) of every crop window tried; row 0 is the whole picture."""
    rows = [(0.0, 1.0)]
    scale = 1.0 - _SCALE_STEP
    while scale >= _MIN_SCALE - 1e-9:
        steps = int(round((1.0 - scale) / _OFFSET_STEP))
        rows.extend((k * _OFFSET_STEP, scale) for k in range(steps + 1))
        scale -= _SCALE_STEP
    return np.array(rows, dtype=np.float32)


_WINDOWS = _windows()


def _sampling(window: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear-interpolation indices and weights that resample ``side`` pixels from each (offset, scale) window."""
    u = (np.arange(side, dtype=np.float32) + 0.5) / side
    x = (window[:, :1] + window[:, 1:] * u[None, :]) * side - 0.5
    x = np.clip(x, 0, side - 1)
    i0 = np.floor(x).astype(np.intp)
    return i0, np.minimum(i0 + 1, side - 1), (x - i0).astype(np.float32)


@functools.cache
def _profile_matrices() -> np.ndarray:
    """The window resampling as matrices, for 1-D profiles (built on first use: worker processes never need it)."""
    i0, i1, f = _sampling(_WINDOWS, DETAIL_SIDE)
    mats = np.zeros((len(_WINDOWS), DETAIL_SIDE, DETAIL_SIDE), dtype=np.float32)
    rows = np.arange(DETAIL_SIDE)
    for w in range(len(_WINDOWS)):
        np.add.at(mats[w], (rows, i0[w]), 1 - f[w])
        np.add.at(mats[w], (rows, i1[w]), f[w])
    return mats


def _warp(img: np.ndarray, win_y: np.ndarray, win_x: np.ndarray) -> np.ndarray:
    """Resample (k, C, n, n) images to the given (k, 2) windows per axis."""
    side = img.shape[-1]
    y0, y1, fy = _sampling(win_y, side)
    x0, x1, fx = _sampling(win_x, side)
    k = np.arange(len(img))[:, None, None]
    c = np.arange(img.shape[1])[None, :, None]
    rows = img[k, c, y0[:, None, :]] * (1 - fy)[:, None, :, None] + img[k, c, y1[:, None, :]] * fy[:, None, :, None]
    rows = np.swapaxes(rows, 2, 3)
    cols = rows[k, c, x0[:, None, :]] * (1 - fx)[:, None, :, None] + rows[k, c, x1[:, None, :]] * fx[:, None, :, None]
    return np.swapaxes(cols, 2, 3)


def _blur(img: np.ndarray) -> np.ndarray:
    p = np.pad(img, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    v = p[:, :, :-2, :] + 2 * p[:, :, 1:-1, :] + p[:, :, 2:, :]
    return (v[:, :, :, :-2] + 2 * v[:, :, :, 1:-1] + v[:, :, :, 2:]) / 16


def _fit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` with its mean and contrast per channel brought to ``b``'s (within the gain a colour shift allows)."""
    am = a.mean(axis=(2, 3), keepdims=True)
    bm = b.mean(axis=(2, 3), keepdims=True)
    da, db = a - am, b - bm
    gain = (da * db).sum(axis=(2, 3), keepdims=True) / ((da * da).sum(axis=(2, 3), keepdims=True) + 1e-3)
    return da * np.clip(gain, *_GAIN) + bm


def _patches(diff: np.ndarray, patch: int) -> np.ndarray:
    """Mean of (k, n, n) over every patch x patch square (all positions): (k, n - patch + 1, n - patch + 1)."""
    c = np.pad(diff, ((0, 0), (1, 0), (1, 0))).cumsum(axis=1).cumsum(axis=2)
    total = c[:, patch:, patch:] - c[:, :-patch, patch:] - c[:, patch:, :-patch] + c[:, :-patch, :-patch]
    return total / (patch * patch)


def _neighbourhood(img: np.ndarray, pick: np.ufunc) -> np.ndarray:
    """``pick`` (np.minimum or np.maximum) over each interior pixel's 3x3 neighbourhood: (k, C, n - 2, n - 2)."""
    rows = pick(pick(img[:, :, :-2, :], img[:, :, 1:-1, :]), img[:, :, 2:, :])
    return pick(pick(rows[:, :, :, :-2], rows[:, :, :, 1:-1]), rows[:, :, :, 2:])


def _score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The worst patch difference of aligned (k, 3, n, n) RGB pairs (grey levels of 255; lower is more alike).

    Each pixel of ``b`` is compared with the range that ``a`` spans around it, between each pixel and halfway to
    its neighbours: what a shift of up to half a pixel gives. Edges that moved by a fraction of a pixel therefore
    count as equal, while anything painted differently falls outside. What falls outside counts for less where the
    picture is busy (fine texture is resampled differently in every copy), and is averaged over 4x4 patches at every
    position; the worst patch is the score.
    """
    fitted = _fit(a, b)
    centre = fitted[:, :, 1:-1, 1:-1]
    # Halfway to the darkest (brightest) of the 3x3 neighbours: the 3x3 minimum (maximum), done row then column.
    low = (_neighbourhood(fitted, np.minimum) + centre) * 0.5
    high = (_neighbourhood(fitted, np.maximum) + centre) * 0.5
    target = b[:, :, 1:-1, 1:-1]
    outside = np.maximum(np.maximum(target - high, low - target), 0) / (1 + (high - low) / _BUSY)
    return _patches(outside.max(axis=1)[:, 1:-1, 1:-1], _PATCH).max(axis=(1, 2))


_YCC_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], dtype=np.float32)


def _rgb(d: Details, index: np.ndarray) -> np.ndarray:
    """(k, 3, 64, 64) float RGB from the stored luminance and half-resolution colour, blurred a little.

    The blur (once here, not after every alignment) evens out how differently copies were resampled.
    """
    luma = d.luma[index].astype(np.float32)
    chroma = d.chroma[index].astype(np.float32) - 128.0
    up = DETAIL_SIDE // CHROMA_SIDE
    chroma = chroma.repeat(up, axis=2).repeat(up, axis=3)
    ycc = np.concatenate([luma[:, None], chroma], axis=1)
    return _blur(np.einsum("ij,kjyx->kiyx", _YCC_TO_RGB, ycc))


def _normalise(v: np.ndarray) -> np.ndarray:
    v = v - v.mean(axis=-1, keepdims=True)
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-6)


def _band_profiles(gray: np.ndarray, axis: int) -> np.ndarray:
    """(k, _BANDS, 64) brightness profiles along ``axis`` (1: rows, 2: columns), one per band across it."""
    side = gray.shape[-1]
    if axis == 1:
        bands = gray.reshape(len(gray), side, _BANDS, side // _BANDS).mean(axis=3)  # (k, y, band)
    else:
        bands = gray.reshape(len(gray), _BANDS, side // _BANDS, side).mean(axis=2).swapaxes(1, 2)  # (k, x, band)
    return _normalise(bands.swapaxes(1, 2))


def _crop_fit(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """(k, W): how well each window of A's profiles matches B's whole profiles (mean correlation over bands).

    ``pb`` is normalised (zero mean, unit length), so a window's correlation is its dot product with ``pb`` over
    its own spread: no normalised copy of the (k, bands, W, 64) windows is made.
    """
    mats = _profile_matrices()
    k, bands, side = pa.shape
    windows = (pa.reshape(k * bands, side) @ mats.reshape(-1, side).T).reshape(k, bands, len(mats), side)
    dots = np.einsum("kbws,kbs->kbw", windows, pb)
    spread = np.sqrt(np.maximum((windows * windows).sum(axis=3) - windows.sum(axis=3) ** 2 / side, 0.0)) + 1e-6
    return (dots / spread).mean(axis=1)


def _alignments(ga: np.ndarray, gb: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Per pair, two alignments to try: the best with A as the crop of B, and the best the other way round.

    Each is (window of A in y, in x, window of B in y, in x) as indices into ``_WINDOWS`` (0: whole picture).
    The axes are estimated in turn: a crop in x changes what the bands of the y profiles hold, so y is estimated
    again once x is known, and x once y is.
    """
    found = []
    zero = np.zeros(len(ga), dtype=np.intp)
    for crop, whole in ((ga, gb), (gb, ga)):
        pieces = crop[:, None]
        x = zero
        y = _crop_fit(_band_profiles(crop, 1), _band_profiles(whole, 1)).argmax(axis=1)
        for _ in range(_ROUNDS):
            rows = _warp(pieces, _WINDOWS[y], _WINDOWS[zero])[:, 0]
            x = _crop_fit(_band_profiles(rows, 2), _band_profiles(whole, 2)).argmax(axis=1)
            cols = _warp(pieces, _WINDOWS[zero], _WINDOWS[x])[:, 0]
            y = _crop_fit(_band_profiles(cols, 1), _band_profiles(whole, 1)).argmax(axis=1)
        found.append((y, x, zero, zero) if crop is ga else (zero, zero, y, x))
    return found


def _chunk_scores(d: Details, pairs: np.ndarray, mirrored: bool) -> np.ndarray:
    a = _rgb(d, pairs[:, 0])
    if mirrored:
        a = a[..., ::-1]
    b = _rgb(d, pairs[:, 1])
    scores = _score(a, b)
    # Pairs that already match closely as they are need no crop search.
    todo = np.flatnonzero(scores > _CLOSE)
    if not len(todo):
        return scores
    a, b = a[todo], b[todo]
    best = scores[todo]
    for ya, xa, yb, xb in _alignments(a.mean(axis=1), b.mean(axis=1)):
        s = _score(_warp(a, _WINDOWS[ya], _WINDOWS[xa]), _warp(b, _WINDOWS[yb], _WINDOWS[xb]))
        np.minimum(best, s, out=best)
    scores[todo] = best
    return scores


_CLOSE = 2.5  # below this a pair matches as it is: no crop search

# The worst patch difference up to which two pictures are proven one. Measured (benchmarks/bench_dataset.py): copies
# of every planted kind score 0-5 (a few crops of fine periodic texture more), different paintings of one artist's
# series that differ by one house, tree or boat score 8.5 and up, unrelated pictures 19 and up.
PROVEN = 6.0


def worst_patch(details: Details, pairs: np.ndarray, *, mirrored: bool = False) -> np.ndarray:
    """For each (i, j) pair, the worst patch difference after the best alignment (lower is more alike).

    With ``mirrored``, picture i is compared mirrored left to right.
    """
    out = np.empty(len(pairs), dtype=np.float32)
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start : start + _CHUNK]
        out[start : start + len(chunk)] = _chunk_scores(details, chunk, mirrored)
    return out
