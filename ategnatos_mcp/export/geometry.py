"""Pixel work with Pillow: orientation, sRGB conversion, resize with fit / fill / pad, attention crop.

Imported lazily (Pillow is heavy): only the worker-thread side of ``service`` imports this module.
"""

from __future__ import annotations

import io
from itertools import accumulate

from PIL import Image, ImageCms, ImageColor, ImageFilter, ImageOps

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.export.models import Anchor, CropMode

__all__ = ["attention_box", "normalise", "parse_colour", "render", "scale_needed"]

_LANCZOS = Image.Resampling.LANCZOS
_ANALYSIS_SIDE = 256
# Large reductions first shrink by an integer factor, then Lanczos: much faster, visually the same at >= 3.
_REDUCING_GAP = 3.0


def normalise(im: Image.Image) -> tuple[Image.Image, str, list[str]]:
    """Upright the image (EXIF orientation), convert it to sRGB, and bring it to RGB or RGBA."""
    warnings: list[str] = []
    im = ImageOps.exif_transpose(im)
    has_alpha = im.mode in {"RGBA", "LA", "PA"} or "transparency" in im.info
    icc = im.info.get("icc_profile")
    colour = "no embedded profile: treated as sRGB"
    if icc:
        try:
            im, colour = _to_srgb(im, icc, has_alpha)
        except (OSError, ImageCms.PyCMSError):
            warnings.append("The embedded colour profile could not be read; colours were kept as they are.")
            colour = "unreadable embedded profile: colours kept as they are"
    if im.mode not in {"RGB", "RGBA"}:
        im = im.convert("RGBA" if has_alpha else "RGB")
    return im, colour, warnings


def _to_srgb(im: Image.Image, icc: bytes, has_alpha: bool) -> tuple[Image.Image, str]:
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    name = ImageCms.getProfileDescription(source).strip() or "an unnamed profile"
    if "srgb" in name.lower().replace(" ", ""):
        return im, f"already sRGB ({name})"
    if im.mode == "P":
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif im.mode in {"LA", "PA"}:
        im = im.convert("RGBA")
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    converted = ImageCms.profileToProfile(
        im, source, ImageCms.createProfile("sRGB"), outputMode=out_mode, renderingIntent=ImageCms.Intent.PERCEPTUAL
    )
    assert converted is not None  # profileToProfile returns None only with inPlace=True
    converted.info.pop("icc_profile", None)
    return converted, f"converted from {name} to sRGB"


def parse_colour(value: str) -> tuple[int, int, int]:
    """'#rrggbb' or a CSS colour name to an RGB triple.

    Raises:
        InvalidRequestError: not a colour Pillow knows.
    """
    try:
        rgb = ImageColor.getrgb(value)
    except ValueError as exc:
        raise InvalidRequestError(
            f"'{value}' is not a colour I understand.", hint="Use a hex colour like '#ffffff' or a name like 'white'."
        ) from exc
    return rgb[0], rgb[1], rgb[2]


def scale_needed(src: tuple[int, int], box: tuple[int, int], crop: CropMode) -> float:
    """How much the source must be enlarged (or shrunk, < 1) to produce ``box`` with ``crop``."""
    ratios = (box[0] / src[0], box[1] / src[1])
    return max(ratios) if crop == "fill" else min(ratios)


def render(
    im: Image.Image,
    box: tuple[int, int],
    crop: CropMode,
    *,
    anchor: Anchor = "centre",
    background: tuple[int, int, int] = (255, 255, 255),
    transparent_pad: bool = False,
) -> Image.Image:
    """Resize ``im`` into ``box``: ``fit`` keeps the whole image inside (the result may be smaller on one side),
    ``fill`` covers the box and crops the overflow, ``pad`` fits and fills the rest with ``background``.
    """
    width, height = box
    scale = scale_needed(im.size, box, crop)
    scaled = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    if crop == "fill":
        left, top = _crop_origin(im, scaled, box, anchor)
        # Crop in source pixels first, then resample once: sharper and faster than resize-then-crop.
        src_box = (left / scale, top / scale, (left + width) / scale, (top + height) / scale)
        return im.resize((width, height), _LANCZOS, box=src_box, reducing_gap=_REDUCING_GAP)
    resized = im.resize(scaled, _LANCZOS, reducing_gap=_REDUCING_GAP)
    if crop == "fit":
        return resized
    if transparent_pad:
        canvas = Image.new("RGBA", box, (0, 0, 0, 0))
    else:
        canvas = Image.new(resized.mode, box, (*background, 255) if resized.mode == "RGBA" else background)
    offset = ((width - resized.width) // 2, (height - resized.height) // 2)
    canvas.paste(resized, offset, resized if resized.mode == "RGBA" else None)
    return canvas


def _crop_origin(im: Image.Image, scaled: tuple[int, int], box: tuple[int, int], anchor: Anchor) -> tuple[int, int]:
    extra_x, extra_y = scaled[0] - box[0], scaled[1] - box[1]
    if anchor == "centre" or (extra_x <= 0 and extra_y <= 0):
        return max(0, extra_x // 2), max(0, extra_y // 2)
    x_frac, y_frac = attention_box(im, box[0] / scaled[0], box[1] / scaled[1])
    # The analysis copy is coarse: keep the window inside the picture after scaling back up.
    return min(max(0, extra_x), round(x_frac * scaled[0])), min(max(0, extra_y), round(y_frac * scaled[1]))


def attention_box(im: Image.Image, keep_w: float, keep_h: float) -> tuple[float, float]:
    """Where to put a window keeping ``keep_w`` x ``keep_h`` of the image (fractions) to hold the most detail.

    Detail is an energy map of edges plus colour saturation on a small copy, so the window follows the
    subject (busy, colourful areas) rather than flat background. Returns the window's top-left as fractions.
    """
    small = im.convert("RGB")
    small.thumbnail((_ANALYSIS_SIDE, _ANALYSIS_SIDE), Image.Resampling.BILINEAR)
    edges = small.convert("L").filter(ImageFilter.FIND_EDGES)
    saturation = small.convert("HSV").getchannel("S")
    energy = Image.blend(edges, saturation, 0.35)
    columns = list(energy.resize((energy.width, 1), Image.Resampling.BOX).tobytes())
    rows = list(energy.resize((1, energy.height), Image.Resampling.BOX).tobytes())
    x = _best_window(columns, keep_w)
    y = _best_window(rows, keep_h)
    return x, y


def _best_window(profile: list[int], keep: float) -> float:
    size = len(profile)
    window = max(1, min(size, round(size * keep)))
    if window >= size:
        return 0.0
    sums = [0, *accumulate(profile)]
    centre = (size - window) / 2
    # Ties go to the most central window so flat images still crop from the middle.
    best = max(range(size - window + 1), key=lambda start: (sums[start + window] - sums[start], -abs(start - centre)))
    return best / size
