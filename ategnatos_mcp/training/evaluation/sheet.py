"""The contact sheet: one labelled picture of the grid (rows = saves, columns = weights), the artist's reference
image beside it when given. Pillow only; called from a worker thread (decoding and encoding block)."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from ategnatos_mcp.training.evaluation.models import SheetCell

__all__ = ["SheetCell", "compose_sheet", "preview_of"]

_CELL = 384
_GAP = 12
_LABEL_W = 200
_HEADER_H = 44
_BG, _INK, _MUTED, _EMPTY = (250, 249, 246), (30, 30, 30), (110, 110, 110), (226, 224, 220)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow built without FreeType: the small bitmap font
        return ImageFont.load_default()


def _wrapped(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, width_chars: int, size: int, fill: tuple[int, int, int]
) -> int:
    lines = textwrap.wrap(text, width_chars) or [""]
    font = _font(size)
    x, y = xy
    for line in lines:
        draw.text((x, y), line, fill=fill, font=font)
        y += size + 6
    return y


def _thumb(cell: SheetCell) -> tuple[Image.Image | None, str]:
    if cell.image is None:
        return None, cell.note or "not made"
    try:
        with Image.open(cell.image) as img:
            picture = img.convert("RGB")
    except (OSError, UnidentifiedImageError):
        return None, f"unreadable: {cell.image.name}"
    return ImageOps.contain(picture, (_CELL, _CELL), Image.Resampling.LANCZOS), ""  # small ones grow to fill


def compose_sheet(
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Sequence[Sequence[SheetCell]],
    reference: Path | None = None,
) -> bytes:
    """The sheet as PNG bytes; ``cells[row][column]``."""
    extra = 1 if reference is not None else 0
    width = _GAP + _LABEL_W + (len(columns) + extra) * (_CELL + _GAP)
    title_lines = textwrap.wrap(title, max(40, width // 11)) or [""]
    top = _GAP + len(title_lines) * 28 + _GAP
    height = top + _HEADER_H + len(rows) * (_CELL + _GAP) + _GAP
    sheet = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(sheet)
    y = _GAP
    for line in title_lines:
        draw.text((_GAP, y), line, fill=_INK, font=_font(22))
        y += 28
    x0 = _GAP + _LABEL_W
    headers = (["your reference"] if extra else []) + list(columns)
    for index, label in enumerate(headers):
        draw.text((x0 + index * (_CELL + _GAP) + 4, top + 8), label, fill=_INK, font=_font(20))
    for r, label in enumerate(rows):
        y = top + _HEADER_H + r * (_CELL + _GAP)
        _wrapped(draw, (_GAP, y + 8), label, 16, 20, _INK)
        row_cells = ([SheetCell(image=reference)] if r == 0 else [SheetCell()]) if extra else []
        row_cells += list(cells[r])
        for c, cell in enumerate(row_cells):
            x = x0 + c * (_CELL + _GAP)
            if extra and c == 0 and r > 0:
                continue  # the reference is shown once, beside the first row
            picture, note = _thumb(cell)
            if picture is None:
                draw.rectangle((x, y, x + _CELL, y + _CELL), fill=_EMPTY)
                _wrapped(draw, (x + 10, y + 10), note, 34, 16, _MUTED)
                continue
            sheet.paste(picture, (x + (_CELL - picture.width) // 2, y + (_CELL - picture.height) // 2))
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()


def preview_of(png: bytes, *, max_side: int, budget_bytes: int) -> bytes:
    """A JPEG of the sheet small enough to show inline: smaller and plainer until it fits the budget."""
    with Image.open(io.BytesIO(png)) as img:
        picture = img.convert("RGB")
    side = max_side
    while True:
        copy = picture.copy()
        copy.thumbnail((side, side), Image.Resampling.LANCZOS)
        data = b""
        for quality in (85, 70, 55):
            out = io.BytesIO()
            copy.save(out, format="JPEG", quality=quality, optimize=True)
            data = out.getvalue()
            if len(data) <= budget_bytes:
                return data
        if side <= 256:
            return data  # the smallest we make: the budget was set below any useful picture
        side = int(side * 0.75)
