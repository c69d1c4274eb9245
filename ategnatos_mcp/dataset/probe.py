"""Read one image once: integrity, real format, mode, displayed size, and every hash, from a single decode.

Runs in worker processes (see ``runner.py``); it imports Pillow and numpy, so it is only imported
lazily. JPEGs are decoded in draft mode (DCT scaling, 1/2 to 1/8 size): the whole entropy-coded stream is
still read, so truncation is still caught, at a fraction of the cost.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ategnatos_mcp.dataset.fastdecode import PngScan, png_pixels, scan_png, webp_pixels
from ategnatos_mcp.dataset.verify import CHROMA_SIDE, DETAIL_SIDE

__all__ = ["PROBE_VERSION", "ProbeRecord", "dct_hash", "probe_bytes", "probe_file", "probe_files"]

PROBE_VERSION = 5
HASH_SIDE = 32
MAX_PIXELS = 2 * 89_478_485  # twice Pillow's own warning limit: beyond this, decoding is refused

_TRANSPOSE = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}


@dataclass
class ProbeRecord:
    """What one decode tells about a file. ``error`` is set (and the rest mostly empty) when it can't be read.

    ``error`` kinds: ``empty``, ``not_image``, ``truncated``, ``bomb``, ``corrupt``, ``unreadable``.
    """

    size: int
    sha256: str
    error: str | None = None
    error_detail: str = ""
    format: str = ""
    mode: str = ""
    bit_depth: int = 8
    width: int = 0  # as stored
    height: int = 0
    display_width: int = 0  # after EXIF orientation
    display_height: int = 0
    orientation: int = 1
    frames: int = 1
    transparent: bool = False
    phash: int = 0
    phash_mirror: int = 0
    thumb: bytes = b""  # HASH_SIDE x HASH_SIDE grayscale, row-major
    color: bytes = b""  # 4 x 4 RGB, row-major: a coarse colour layout for the second check
    detail: bytes = b""  # luminance 64 x 64, then Cb and Cr 32 x 32: the proof of a duplicate (see verify.py)

    @property
    def ok(self) -> bool:
        return self.error is None


_DCT = None


def _dct_matrix() -> np.ndarray:
    global _DCT  # a per-process constant, built once
    if _DCT is None:
        n = HASH_SIDE
        k = np.arange(n)[:, None]
        i = np.arange(n)[None, :]
        _DCT = np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    return _DCT


def dct_hash(pixels: np.ndarray) -> int:
    """A 64-bit perceptual hash (pHash): the signs of the 8x8 lowest DCT frequencies against their median."""
    d = _dct_matrix()
    low = (d @ pixels.astype(np.float64) @ d.T)[:8, :8]
    # Rounding noise is no frequency: a flat picture has exactly zero AC terms, as imagehash (scipy) computes them.
    low[np.abs(low) < 1e-9 * max(float(np.abs(low).max()), 1.0)] = 0.0
    bits = (low > np.median(low)).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def _png_bit_depth(data: bytes) -> int:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 24:
        return data[24]
    return 8


def _to_rgb_or_l(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        peak = float(arr.max()) if arr.size else 0.0
        scale = 257.0 if peak > 255 else 1.0
        return Image.fromarray(np.clip(arr / scale, 0, 255).astype(np.uint8), "L")
    if im.mode in ("L", "RGB"):
        return im
    return im.convert("RGB")


def _min_alpha(im: Image.Image) -> int:
    lo, _ = im.getchannel("A").getextrema()
    return int(lo)  # pyright: ignore[reportArgumentType]  # one band: a (min, max) pair of numbers


def _transparent(im: Image.Image) -> bool:
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _min_alpha(im) < 255
    if im.mode == "P" and "transparency" in im.info:
        return _min_alpha(im.convert("RGBA")) < 255
    return False


def _reference_phash(gray: np.ndarray) -> int:
    """imagehash's pHash of the 32x32 grey picture: the same bits as ``dct_hash`` (tested), from the reference
    implementation. Used for the formats our fast decoders do not handle; it loads scipy, so only in a worker and
    only when such a file comes."""
    import imagehash  # ~0.2 s, and scipy inside phash: loaded only when a file without a fast decoder comes

    picture = Image.fromarray(gray.astype(np.uint8), "L")
    return int(str(imagehash.phash(picture, hash_size=8, highfreq_factor=HASH_SIDE // 8)), 16)


def _hashes(im: Image.Image, record: ProbeRecord, *, fast: bool = True) -> None:
    # reducing_gap: a fast integer box reduce to >= 4x the detail side first (what JPEG draft mode gives JPEGs),
    # then the exact box resize; a full-size resize of a large PNG or WebP cost about as much again as a hash.
    mid = _to_rgb_or_l(im).resize((DETAIL_SIDE, DETAIL_SIDE), Image.Resampling.BOX, reducing_gap=4.0)
    for method in _TRANSPOSE.get(record.orientation, []):  # on the square thumbnail, not the full image
        mid = mid.transpose(method)
    small = mid.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX)
    gray = np.asarray(small.convert("L"), dtype=np.float32)
    if fast:
        record.phash, record.phash_mirror = dct_hash(gray), dct_hash(gray[:, ::-1])
    else:  # a format decoded by Pillow's general path (GIF, BMP, TIFF, 16-bit, animated): the reference computes
        record.phash, record.phash_mirror = _reference_phash(gray), _reference_phash(gray[:, ::-1])
    record.thumb = gray.astype(np.uint8).tobytes()
    record.color = small.convert("RGB").resize((4, 4), Image.Resampling.BOX).tobytes()
    luma, cb, cr = mid.convert("YCbCr").split()
    chroma = [band.resize((CHROMA_SIDE, CHROMA_SIDE), Image.Resampling.BOX).tobytes() for band in (cb, cr)]
    record.detail = luma.tobytes() + b"".join(chroma)


def _open_checked(data: bytes, record: ProbeRecord) -> Image.Image | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        record.error, record.error_detail = "bomb", str(exc)
        return None
    except Image.UnidentifiedImageError:
        record.error, record.error_detail = "not_image", "not a picture format we can read"
        return None
    # A damaged file can fail while its header is parsed (e.g. a cut WebP: "could not create decoder object").
    except Exception as exc:  # noqa: BLE001
        record.error, record.error_detail = "corrupt", f"{type(exc).__name__}: {exc}"
        return None
    record.format = im.format or ""
    record.width, record.height = im.size
    record.mode = im.mode
    if im.size[0] * im.size[1] > MAX_PIXELS:
        record.error = "bomb"
        record.error_detail = f"claims {im.size[0]}x{im.size[1]} pixels, too large to open safely"
        return None
    return im


def _exif(im: Image.Image, png: PngScan | None) -> Image.Exif:
    if png is None:
        return im.getexif()
    # Pillow's PNG getexif decodes the whole image to look for eXIf after the pixels; the chunk walk found it.
    if png.exif and "exif" not in im.info:
        im.info["exif"] = png.exif
    return Image.Image.getexif(im)


def _describe(im: Image.Image, data: bytes, record: ProbeRecord, png: PngScan | None) -> None:
    record.frames = int(getattr(im, "n_frames", 1) or 1)
    record.bit_depth = _png_bit_depth(data) if record.format == "PNG" else (16 if "16" in im.mode else 8)
    try:
        record.orientation = int(_exif(im, png).get(0x0112, 1) or 1)
    except (OSError, ValueError, SyntaxError, struct.error):
        record.orientation = 1
    if record.orientation not in _TRANSPOSE:
        record.orientation = 1
    w, h = record.width, record.height
    record.display_width, record.display_height = (h, w) if record.orientation >= 5 else (w, h)


def _fast_image(data: bytes, record: ProbeRecord, png: PngScan | None) -> Image.Image | None:
    """The decoded image from a faster decoder (plain 8-bit still PNG or WebP), or None to let Pillow decode it."""
    if record.frames != 1:
        return None
    pixels = None
    if png is not None and png.intact and record.bit_depth == 8 and record.mode in ("L", "RGB", "RGBA"):
        pixels = png_pixels(data, record.mode)
    elif record.format == "WEBP" and record.mode in ("RGB", "RGBA"):
        pixels = webp_pixels(data, record.mode)
    if pixels is None or pixels.shape[:2] != (record.height, record.width):
        return None
    return Image.fromarray(pixels)


def probe_bytes(data: bytes) -> ProbeRecord:
    """Probe one file's bytes. Never raises for a bad file: the problem is in ``error``."""
    record = ProbeRecord(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    if not data:
        record.error, record.error_detail = "empty", "the file is empty (0 bytes)"
        return record
    im = _open_checked(data, record)
    if im is None:
        return record
    try:
        png = scan_png(data) if record.format == "PNG" else None
        _describe(im, data, record, png)
        decoded = _fast_image(data, record, png)
        drafted = record.format == "JPEG" and im.mode in ("RGB", "L", "CMYK")  # JPEG's own fast path: DCT scaling
        if decoded is None:
            if drafted:
                im.draft(im.mode, (DETAIL_SIDE * 2, DETAIL_SIDE * 2))
            im.load()
        picture = decoded or im
        record.transparent = _transparent(picture)
        _hashes(picture, record, fast=decoded is not None or drafted)
    except OSError as exc:
        text = str(exc)
        truncated = "truncated" in text or "broken data stream" in text or "unrecognized data stream" in text
        record.error, record.error_detail = ("truncated" if truncated else "corrupt"), text
    # A hostile or broken file may raise anything from inside a decoder; it must not stop the audit.
    except Exception as exc:  # noqa: BLE001
        record.error, record.error_detail = "corrupt", f"{type(exc).__name__}: {exc}"
    finally:
        im.close()
    return record


def probe_file(path: str) -> ProbeRecord:
    """Probe the file at ``path`` (read once)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return ProbeRecord(size=0, sha256="", error="unreadable", error_detail=exc.strerror or str(exc))
    return probe_bytes(data)


def probe_files(paths: list[str]) -> list[ProbeRecord]:
    """Probe a chunk of files (the unit of work sent to a worker process)."""
    return [probe_file(p) for p in paths]
