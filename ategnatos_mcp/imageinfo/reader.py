"""Read one image file's facts with Pillow (blocking: call through ``inspect_image``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import anyio

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.imageinfo.models import GenerationParameters, ImageInfo
from ategnatos_mcp.imageinfo.parameters import decode_user_comment, parse_a1111, parse_comfyui

__all__ = ["inspect_image", "read_image_info"]

_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_SKIP_TAGS = {"MakerNote", "PrintImageMatching", "ExifOffset", "GPSInfo", "UserComment", "XMLPacket"}
_MAX_VALUE = 200
_MAX_RAW = 20_000
_GENERATION_KEYS = {"prompt", "workflow", "parameters"}


async def inspect_image(path: Path, *, include_raw: bool = False) -> ImageInfo:
    """Facts about the image at ``path`` (already confined), read in a worker thread."""
    return await anyio.to_thread.run_sync(lambda: read_image_info(path, include_raw=include_raw))


def read_image_info(path: Path, *, include_raw: bool = False) -> ImageInfo:
    """Facts about the image at ``path``.

    Raises:
        InvalidRequestError: the file is not an image Pillow can read.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return _describe(im, path, include_raw=include_raw)
    except Image.DecompressionBombError as exc:
        raise InvalidRequestError(
            f"'{path.name}' has too many pixels to open safely.",
            hint="Inspect a smaller copy of the image (under about 178 megapixels).",
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        why = "not a picture format I know" if isinstance(exc, UnidentifiedImageError) else "damaged or cut short"
        raise InvalidRequestError(
            f"'{path.name}' is not an image I can read (it is {why}).",
            hint="Check it is a PNG, JPEG, WebP or other common image file and that it is not truncated.",
        ) from exc


def _describe(im: Any, path: Path, *, include_raw: bool) -> ImageInfo:
    texts = _text_chunks(im)
    exif, user_comment = _exif(im)
    generation = _generation(texts, user_comment, include_raw=include_raw)
    dpi = im.info.get("dpi")
    return ImageInfo(
        path=str(path),
        file_bytes=path.stat().st_size,
        format=im.format or path.suffix.lstrip(".").upper(),
        width=im.width,
        height=im.height,
        mode=im.mode,
        has_alpha=im.mode in {"RGBA", "LA", "PA", "La", "RGBa"} or "transparency" in im.info,
        frames=getattr(im, "n_frames", 1),
        dpi=(float(dpi[0]), float(dpi[1])) if isinstance(dpi, tuple) and len(dpi) == 2 else None,
        icc_profile=_icc_description(im.info.get("icc_profile")),
        exif=exif,
        text_chunks={k: _shorten(v) for k, v in texts.items() if k not in _GENERATION_KEYS},
        generation=generation,
    )


def _text_chunks(im: Any) -> dict[str, str]:
    # PNG ``text`` also covers chunks stored after the image data; ``info`` only those before it.
    raw = getattr(im, "text", None) if im.format == "PNG" else None
    chunks = dict(raw) if isinstance(raw, dict) else {}
    comment = im.info.get("comment")
    if isinstance(comment, bytes):
        comment = comment.decode("utf-8", "replace")
    if isinstance(comment, str) and comment.strip():
        chunks.setdefault("comment", comment)
    return {str(k): str(v) for k, v in chunks.items()}


def _exif(im: Any) -> tuple[dict[str, str], bytes | str | None]:
    from PIL import ExifTags

    try:
        exif = im.getexif()
    except (OSError, SyntaxError, ValueError):
        return {}, None
    merged: dict[int, Any] = dict(exif.items())
    try:
        merged.update(exif.get_ifd(_EXIF_IFD))
    except (KeyError, OSError, ValueError):
        pass
    user_comment = merged.get(_USER_COMMENT)
    readable: dict[str, str] = {}
    for tag, value in merged.items():
        name = ExifTags.TAGS.get(tag, f"Tag{tag:#06x}")
        if name in _SKIP_TAGS:
            continue
        if isinstance(value, bytes):
            if len(value) > 64:
                readable[name] = f"<{len(value)} bytes>"
                continue
            value = value.decode("ascii", "replace").strip("\x00")
        readable[name] = _shorten(str(value))
    if "GPSInfo" in {ExifTags.TAGS.get(t) for t in merged}:
        readable["GPSInfo"] = "present (location data: strip it before publishing)"
    return readable, user_comment


def _generation(
    texts: dict[str, str], user_comment: bytes | str | None, *, include_raw: bool
) -> GenerationParameters | None:
    params: GenerationParameters | None = None
    raw: str | None = None
    if "prompt" in texts:
        raw = texts["prompt"]
        params = parse_comfyui(raw, has_workflow="workflow" in texts)
    if params is None and "parameters" in texts:
        raw = texts["parameters"]
        params = parse_a1111(raw)
    if params is None and user_comment is not None:
        raw = decode_user_comment(user_comment)
        params = parse_a1111(raw) if raw else None
    if params is None and "comment" in texts:
        raw = texts["comment"]
        params = parse_a1111(raw)
    if params is not None and include_raw and raw:
        params.raw = raw[:_MAX_RAW]
    return params


def _icc_description(icc: bytes | None) -> str | None:
    if not icc:
        return None
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.getProfileDescription(profile).strip() or "unnamed profile"
    except (OSError, ImageCms.PyCMSError):
        return f"unreadable profile ({len(icc)} bytes)"


def _shorten(value: str) -> str:
    return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 1] + "…"
