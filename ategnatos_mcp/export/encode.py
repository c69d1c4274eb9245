"""Encode a rendered image: PNG / JPEG / WebP / AVIF under a byte budget, and multi-size .ico files.

Imported lazily (Pillow is heavy): only the worker-thread side of ``service`` imports this module.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, PngImagePlugin, features

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.export.models import ImageFormat

__all__ = ["Encoded", "Metadata", "encode", "encode_ico", "format_available"]

_PIL_NAMES: dict[str, str] = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
_DEFAULT_QUALITY = {"jpeg": 90, "webp": 90, "avif": 80}
_MIN_QUALITY = 30
_PNG_COLOUR_STEPS = (256, 128, 64)


@dataclass
class Metadata:
    """What to carry over from the source file when metadata is kept."""

    exif: bytes | None = None
    icc: bytes | None = None
    text: dict[str, str] = field(default_factory=dict)
    dpi: int | None = None


@dataclass
class Encoded:
    data: bytes
    quality: int | None
    note: str | None = None


def format_available(fmt: ImageFormat) -> bool:
    """Whether this Pillow build can write ``fmt`` (AVIF needs Pillow's libavif support)."""
    return fmt != "avif" or bool(features.check("avif"))


def encode(
    im: Image.Image,
    fmt: ImageFormat,
    *,
    meta: Metadata,
    quality: int | None = None,
    max_bytes: int | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Encoded:
    """Encode ``im`` as ``fmt``. With ``max_bytes``, lossy formats search for the highest quality that fits
    and PNG falls back to fewer colours.

    Raises:
        InvalidRequestError: the budget cannot be met even at the lowest quality we allow.
    """
    if fmt == "jpeg" and im.mode == "RGBA":
        flat = Image.new("RGB", im.size, background)
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    if fmt == "png":
        return _encode_png(im, meta, max_bytes)
    start = quality or _DEFAULT_QUALITY[fmt]
    data = _save(im, fmt, meta, quality=start)
    if max_bytes is None or len(data) <= max_bytes:
        return Encoded(data, start)
    best: tuple[int, bytes] | None = None
    low, high = _MIN_QUALITY, start - 1
    while low <= high:  # the largest quality whose file fits
        mid = (low + high) // 2
        candidate = _save(im, fmt, meta, quality=mid)
        if len(candidate) <= max_bytes:
            best, low = (mid, candidate), mid + 1
        else:
            high = mid - 1
    if best is None:
        raise _over_budget(fmt, im.size, max_bytes, len(_save(im, fmt, meta, quality=_MIN_QUALITY)))
    return Encoded(best[1], best[0], f"quality lowered to {best[0]} to fit {max_bytes:,} bytes")


def _encode_png(im: Image.Image, meta: Metadata, max_bytes: int | None) -> Encoded:
    data = _save(im, "png", meta)
    if max_bytes is None or len(data) <= max_bytes:
        return Encoded(data, None)
    # Over budget: the slow exhaustive zlib search first, then fewer colours.
    data = _save(im, "png", meta, optimize=True)
    if len(data) <= max_bytes:
        return Encoded(data, None)
    for colours in _PNG_COLOUR_STEPS:
        method = Image.Quantize.FASTOCTREE if im.mode == "RGBA" else Image.Quantize.MEDIANCUT
        reduced = im.quantize(colors=colours, method=method, dither=Image.Dither.FLOYDSTEINBERG)
        data = _save(reduced, "png", meta)
        if len(data) <= max_bytes:
            return Encoded(data, None, f"reduced to {colours} colours to fit {max_bytes:,} bytes")
    raise _over_budget("png", im.size, max_bytes, len(data))


def _over_budget(fmt: str, size: tuple[int, int], max_bytes: int, smallest: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"A {size[0]}x{size[1]} {fmt.upper()} cannot be made smaller than {smallest:,} bytes "
        f"without visible damage; the budget is {max_bytes:,} bytes.",
        hint="Raise max_bytes, or choose WebP or AVIF (smaller files at the same look), or a smaller size.",
    )


def _save(
    im: Image.Image, fmt: ImageFormat, meta: Metadata, *, quality: int | None = None, optimize: bool = False
) -> bytes:
    options: dict[str, Any] = {}
    if meta.dpi:
        options["dpi"] = (meta.dpi, meta.dpi)
    if meta.icc:
        options["icc_profile"] = meta.icc
    if meta.exif:
        options["exif"] = meta.exif
    if fmt == "png":
        options["optimize"] = optimize
        if meta.text:
            info = PngImagePlugin.PngInfo()
            for key, value in meta.text.items():
                info.add_itxt(key, value)
            options["pnginfo"] = info
    elif fmt == "jpeg":
        options.update(quality=quality, optimize=True, progressive=True)
    elif fmt == "webp":
        options.update(quality=quality, method=4)
    else:
        options.update(quality=quality, speed=8)
    buffer = io.BytesIO()
    im.save(buffer, format=_PIL_NAMES[fmt], **options)
    return buffer.getvalue()


def encode_ico(im: Image.Image, sizes: list[int]) -> bytes:
    """A .ico holding each square size in ``sizes`` (rendered from ``im``, which should be square)."""
    largest = max(sizes)
    base = im.resize((largest, largest), Image.Resampling.LANCZOS) if im.size != (largest, largest) else im
    frames = [base.resize((s, s), Image.Resampling.LANCZOS) for s in sorted(sizes) if s != largest]
    buffer = io.BytesIO()
    base.save(buffer, format="ICO", sizes=[(s, s) for s in sizes], append_images=frames)
    return buffer.getvalue()
