"""Contact sheets: the files of a duplicate group side by side, each name under its picture. Imports Pillow: lazy only.

One small JPEG per group lets Claude and the artist look before anything moves. A sheet stays within a byte
budget (a few dozen KB), shows at most ``MAX_TILES`` files, and marks the file that would be kept.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ategnatos_mcp.dataset.previews import open_upright

__all__ = ["MAX_TILES", "Tile", "contact_sheet"]

MAX_TILES = 6
_TILE = 180  # longest side of each picture, in pixels
_LABEL = 34  # room for two lines of text under each picture
_GAP = 8
_BACKGROUND = (250, 250, 248)
_INK = (30, 30, 30)
_KEEP = (20, 110, 40)


@dataclass(frozen=True)
class Tile:
    """One file on a sheet: where it is, the name to print, and a short note (e.g. 'keep', 'copy')."""

    path: Path
    name: str
    note: str = ""
    keep: bool = False


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError):  # Pillow built without FreeType: the small bitmap font still reads
        return ImageFont.load_default()


def _fit(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    if font.getlength(text) <= width:
        return text
    while len(text) > 4 and font.getlength("…" + text) > width:
        text = text[1:]
    return "…" + text  # the end of a name (its number, "copy", the extension) tells files apart


def _render(tiles: Sequence[Tile], more: int, side: int) -> Image.Image:
    pictures = []
    for tile in tiles:
        im = open_upright(tile.path, side)
        if im is None:
            im = Image.new("RGB", (side, side * 3 // 4), (200, 200, 200))
        else:
            im.thumbnail((side, side), Image.Resampling.LANCZOS)
        pictures.append(im)
    width = sum(max(p.width, side // 2) for p in pictures) + _GAP * (len(pictures) + 1)
    height = max(p.height for p in pictures) + _LABEL + 2 * _GAP
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font, small = _font(13), _font(11)
    x = _GAP
    for tile, picture in zip(tiles, pictures, strict=True):
        cell = max(picture.width, side // 2)
        sheet.paste(picture, (x + (cell - picture.width) // 2, _GAP))
        if tile.keep:
            draw.rectangle([x - 3, _GAP - 3, x + cell + 2, _GAP + picture.height + 2], outline=_KEEP, width=3)
        y = _GAP + max(p.height for p in pictures) + 4
        draw.text((x, y), _fit(tile.name, font, cell), fill=_INK, font=font)
        if tile.note:
            draw.text((x, y + 16), _fit(tile.note, small, cell), fill=_KEEP if tile.keep else _INK, font=small)
        x += cell + _GAP
    if more:
        draw.text((_GAP, height - 14), f"+ {more} more file(s) not shown", fill=_INK, font=small)
    return sheet


def contact_sheet(tiles: Sequence[Tile], *, budget: int = 30_000) -> bytes:
    """A JPEG of at most ``budget`` bytes (best effort) showing the first ``MAX_TILES`` tiles side by side."""
    shown, more = list(tiles[:MAX_TILES]), max(0, len(tiles) - MAX_TILES)
    side = _TILE if len(shown) <= 3 else _TILE * 3 // 4
    data = b""
    for _ in range(4):
        sheet = _render(shown, more, side)
        for quality in (80, 65, 50):
            buf = io.BytesIO()
            sheet.save(buf, "JPEG", quality=quality, optimize=True)
            data = buf.getvalue()
            if len(data) <= budget:
                return data
        side = side * 3 // 4
    return data
