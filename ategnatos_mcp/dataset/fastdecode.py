"""Faster decoders for the two formats where Pillow is slowest: PNG (libspng) and still WebP (libwebp).

Pillow decodes every WebP through libwebp's animation API (an RGBA canvas, then a conversion) and PNGs
through its own zlib loop; libspng and libwebp's still-image API give the same pixels in about half the
CPU time (see benchmarks/bench_dataset.py). They are only a fast path: any file they refuse, and any
file that is not a plain 8-bit still image, goes back to Pillow, which names the problem the same way
as before. If either library is missing (a platform without wheels), everything goes through Pillow.

libspng, as pyspng calls it, does not check chunk checksums, so a PNG is accepted here only when every
chunk's CRC matches and the file ends with IEND: a flipped byte still sends the file to Pillow.
"""

from __future__ import annotations

import importlib
import struct
import zlib
from typing import Any, NamedTuple

import numpy as np

__all__ = ["PngScan", "png_pixels", "scan_png", "webp_pixels"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_HEAD = struct.Struct(">I4s")

try:
    import pyspng as _spng
except ImportError:  # pragma: no cover - a platform without wheels: Pillow does the work
    _spng = None

try:
    import webp as _webp

    _webp_c: Any = importlib.import_module("webp._webp")  # the cffi module: ffi + lib
except ImportError:  # pragma: no cover
    _webp = _webp_c = None


class PngScan(NamedTuple):
    """What a walk over a PNG's chunks found: whether every checksum matched, and the EXIF chunk if any."""

    intact: bool
    exif: bytes | None


def scan_png(data: bytes) -> PngScan:
    """Check every chunk's CRC and find ``eXIf`` wherever it is (Pillow loads the whole image to look after IDAT)."""
    view = memoryview(data)
    pos, end, exif = 8, len(data), None
    if data[:8] != _PNG_SIGNATURE:
        return PngScan(False, None)
    while pos + 12 <= end:
        length, kind = _CHUNK_HEAD.unpack_from(data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > end:
            return PngScan(False, exif)
        (crc,) = struct.unpack_from(">I", data, body_end)
        if zlib.crc32(view[pos + 4 : body_end]) != crc:
            return PngScan(False, exif)
        if kind == b"eXIf":
            exif = bytes(view[pos + 8 : body_end])
        elif kind == b"IEND":
            return PngScan(True, exif)
        pos = body_end + 4
    return PngScan(False, exif)


def png_pixels(data: bytes, mode: str) -> np.ndarray | None:
    """The pixels of an 8-bit ``L``/``LA``/``RGB``/``RGBA`` PNG whose chunks were checked, or None (use Pillow)."""
    if _spng is None:
        return None
    try:
        pixels = _spng.load(data, mode)
    except Exception:  # noqa: BLE001 - whatever it refuses, Pillow reads and names
        return None
    return pixels if pixels.dtype == np.uint8 else None


def webp_pixels(data: bytes, mode: str) -> np.ndarray | None:
    """The pixels of a still WebP as ``RGB`` or ``RGBA`` (``mode``), or None (use Pillow)."""
    if _webp is None or _webp_c is None:
        return None
    ffi: Any = _webp_c.ffi
    lib: Any = _webp_c.lib
    try:
        source = _webp.WebPData.from_buffer(data)
        config = _webp.WebPDecoderConfig.new()
        config.read_features(source)
        width, height = int(config.input.width), int(config.input.height)
        if config.input.has_animation or width <= 0 or height <= 0:
            return None
        channels = 4 if mode == "RGBA" else 3
        pixels = np.empty((height, width, channels), dtype=np.uint8)
        out = config.ptr.output
        out.colorspace = lib.MODE_RGBA if channels == 4 else lib.MODE_RGB
        out.u.RGBA.rgba = ffi.cast("uint8_t*", ffi.from_buffer(pixels))
        out.u.RGBA.size = pixels.size
        out.u.RGBA.stride = width * channels
        out.is_external_memory = 1
        status = lib.WebPDecode(source.ptr.bytes, source.size, config.ptr)
        lib.WebPFreeDecBuffer(ffi.addressof(config.ptr, "output"))
    except Exception:  # noqa: BLE001
        return None
    return pixels if status == lib.VP8_STATUS_OK else None
