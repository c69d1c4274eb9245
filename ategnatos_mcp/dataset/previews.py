"""Small JPEG previews for Claude to look at: upright, flattened, within a byte budget. Imports Pillow: lazy only."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

__all__ = ["make_preview", "open_upright"]


def open_upright(path: Path, max_side: int) -> Image.Image | None:
    """The picture as displayed (EXIF rotation applied, transparency on white), in RGB, or None if it can't be read.

    JPEGs are decoded at a reduced size (at least ``max_side``); other formats at full size.
    """
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft("RGB", (max_side, max_side))
            im.seek(0)
            im.load()
            upright = ImageOps.exif_transpose(im) or im
            return _flatten(upright)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def make_preview(path: Path, *, max_side: int = 512, budget: int = 60_000) -> bytes | None:
    """A JPEG preview of at most ``budget`` bytes, or None when the file cannot be decoded."""
    rgb = open_upright(path, max_side)
    if rgb is None:
        return None
    side = max_side
    while True:
        small = rgb.copy()
        small.thumbnail((side, side), Image.Resampling.LANCZOS)
        for quality in (82, 70, 55):
            buf = io.BytesIO()
            small.save(buf, "JPEG", quality=quality, optimize=True)
            if buf.tell() <= budget:
                return buf.getvalue()
        if side <= 128:
            return buf.getvalue()
        side = int(side * 0.75)


def _flatten(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if im.mode.startswith("I") or im.mode == "F":
        return ImageOps.autocontrast(im.convert("I").point(lambda v: v / 256).convert("L")).convert("RGB")
    return im.convert("RGB")
