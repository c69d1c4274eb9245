"""The blocking half of an export: decode, normalise, render every target, encode. Runs in a worker thread."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.export.encode import Encoded, Metadata, encode, encode_ico, format_available
from ategnatos_mcp.export.geometry import normalise, parse_colour, render, scale_needed
from ategnatos_mcp.export.models import Anchor, CropMode, ExportTarget

__all__ = ["RenderOutcome", "Rendered", "preview_jpeg", "read_size", "render_targets"]

_TRANSPARENT_FORMATS = {"png", "webp", "avif"}


@dataclass
class Rendered:
    target: ExportTarget
    width: int
    height: int
    encoded: Encoded
    extension: str


@dataclass
class RenderOutcome:
    files: list[Rendered]
    colour: str
    upscaled_by: float | None
    warnings: list[str]


def read_size(path: Path) -> tuple[int, int]:
    """The pixel size of the image at ``path`` (header only)."""
    with _open(path) as im:
        return im.size


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise _unreadable(path, exc) from exc


def _load(path: Path) -> Image.Image:
    """Open and fully decode, so a truncated file fails here with a clear message."""
    im = _open(path)
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        im.close()
        raise _unreadable(path, exc) from exc
    return im


def _unreadable(path: Path, exc: Exception) -> InvalidRequestError:
    if isinstance(exc, Image.DecompressionBombError):
        return InvalidRequestError(
            f"'{path.name}' has too many pixels to open safely.",
            hint="Export from a smaller copy of the image (under about 178 megapixels).",
        )
    return InvalidRequestError(
        f"'{path.name}' is not an image I can read ({exc}).",
        hint="Check it opens in an image viewer and is a PNG, JPEG or WebP file; re-save it if it is truncated.",
    )


def render_targets(
    path: Path,
    targets: list[ExportTarget],
    *,
    crop: CropMode,
    anchor: Anchor,
    quality: int | None,
    max_bytes: int | None,
    keep_metadata: bool,
    background: str,
    dpi: int | None,
    after_model: bool = False,
) -> RenderOutcome:
    """Produce the encoded bytes of every target from the source image (``after_model``: an upscale model's result)."""
    bg = (255, 255, 255) if background == "transparent" else parse_colour(background)
    with _load(path) as opened:
        meta = _metadata(opened, keep_metadata, dpi)
        im, colour, warnings = normalise(opened)
    if keep_metadata and meta.icc is not None:
        from PIL import ImageCms

        meta.icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    files: list[Rendered] = []
    largest_scale = 0.0
    for target in targets:
        if not format_available(target.format):
            raise InvalidRequestError(
                f"This installation cannot write {target.format.upper()} files.", hint="Choose png, jpeg or webp."
            )
        box = _box(im.size, target)
        largest_scale = max(largest_scale, scale_needed(im.size, box, crop))
        transparent = im.mode == "RGBA" and target.format in _TRANSPARENT_FORMATS and background == "transparent"
        frame = render(im, box, crop, anchor=anchor, background=bg, transparent_pad=transparent)
        if target.ico_sizes:
            data = encode_ico(frame, list(target.ico_sizes))
            files.append(Rendered(target, frame.width, frame.height, Encoded(data, None), ".ico"))
            continue
        encoded = encode(frame, target.format, meta=meta, quality=quality, max_bytes=max_bytes, background=bg)
        if encoded.note:
            warnings.append(f"{target.label}: {encoded.note}.")
        ext = ".jpg" if target.format == "jpeg" else f".{target.format}"
        files.append(Rendered(target, frame.width, frame.height, encoded, ext))
    upscaled = round(largest_scale, 2) if largest_scale > 1.0 else None
    if upscaled is not None and after_model:
        warnings.append(
            f"The upscale model's result ({im.width}x{im.height}) still had to be enlarged up to {upscaled}x with "
            "Lanczos; fine detail may look soft. A stronger upscale model (e.g. 4x) gives crisper results."
        )
    elif upscaled is not None:
        warnings.append(
            f"The source ({im.width}x{im.height}) had to be enlarged up to {upscaled}x with Lanczos; "
            "fine detail may look soft. An upscaler model in ComfyUI gives crisper results."
        )
    return RenderOutcome(files, colour, upscaled, warnings)


def _box(size: tuple[int, int], target: ExportTarget) -> tuple[int, int]:
    if target.width and target.height:
        return target.width, target.height
    if target.width:
        return target.width, max(1, round(size[1] * target.width / size[0]))
    assert target.height is not None
    return max(1, round(size[0] * target.height / size[1])), target.height


def _metadata(im: Image.Image, keep: bool, dpi: int | None) -> Metadata:
    if not keep:
        return Metadata(dpi=dpi)
    exif = im.getexif()
    exif.pop(0x0112, None)  # orientation is applied to the pixels, so the tag must not rotate them again
    texts = getattr(im, "text", None) if im.format == "PNG" else None
    return Metadata(
        exif=exif.tobytes() if len(exif) else None,
        icc=im.info.get("icc_profile"),
        text=dict(texts) if isinstance(texts, dict) else {},
        dpi=dpi,
    )


def preview_jpeg(path: Path, max_side: int) -> bytes:
    """A small JPEG of an exported file so the artist (and Claude) can check the crop at a glance."""
    with _load(path) as im:
        small = im.convert("RGBA")
        small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    flat = Image.new("RGB", small.size, (255, 255, 255))
    flat.paste(small, mask=small.getchannel("A"))
    buffer = io.BytesIO()
    flat.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()
