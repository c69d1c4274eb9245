"""Per-file findings: what is wrong with one image, said plainly, with what to do about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ategnatos_mcp.dataset.models import FileProblem

if TYPE_CHECKING:
    from ategnatos_mcp.dataset.probe import ProbeRecord

__all__ = ["EXTREME_ASPECT", "TRAINABLE_FORMATS", "file_problems", "unreadable_problem"]

EXTREME_ASPECT = 3.0
# What kohya sd-scripts loads (its IMAGE_EXTENSIONS); anything else is silently skipped by the trainer.
TRAINABLE_FORMATS = {"JPEG", "PNG", "WEBP", "BMP"}
_EXTENSION_FORMAT = {
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tif": "TIFF",
    "tiff": "TIFF",
}
_GRAY_MODES = {"L", "LA", "I;16", "I;16B", "I;16L", "I", "1", "F"}

_UNREADABLE = {
    "empty": ("empty_file", "The file is empty (0 bytes): there is no picture in it."),
    "not_image": (
        "not_an_image",
        "This is not a picture: its contents are not an image format, whatever its name says.",
    ),
    "truncated": (
        "truncated",
        "The file is cut short (an interrupted download or copy): part of the picture is missing.",
    ),
    "corrupt": ("corrupt", "The picture data is damaged and cannot be decoded."),
    "bomb": (
        "too_large_to_open",
        "The file claims an enormous size; opening it could exhaust memory, so it was refused.",
    ),
    "unreadable": ("cannot_read", "Ategnatos cannot read this file."),
}
_UNREADABLE_FIX = {
    "empty_file": "Replace it with the real picture, or move it out of the dataset.",
    "not_an_image": "Move it out of the dataset (or replace it with the picture it should be).",
    "truncated": "Copy or export it again from the original; until then move it out of the dataset.",
    "corrupt": "Export it again from the original; until then move it out of the dataset.",
    "too_large_to_open": "Export it again at a normal size (for example 2048 px on the long side).",
    "cannot_read": "Check the file's permissions, or move it out of the dataset.",
}


def unreadable_problem(rel: str, kind: str, detail: str = "") -> FileProblem:
    """A blocking problem for a file that cannot be opened or decoded; training would stop on it."""
    code, message = _UNREADABLE.get(kind, _UNREADABLE["corrupt"])
    if kind == "unreadable" and detail:
        message = f"Ategnatos cannot read this file ({detail})."
    return FileProblem(path=rel, problem=code, severity="blocking", message=message, fix=_UNREADABLE_FIX[code])


def _warn(rel: str, code: str, message: str, fix: str, severity: str = "warning") -> FileProblem:
    return FileProblem(path=rel, problem=code, severity=severity, message=message, fix=fix)  # type: ignore[arg-type]


def _format_problems(rel: str, r: ProbeRecord) -> list[FileProblem]:
    found: list[FileProblem] = []
    ext = rel.rsplit(".", 1)[-1].lower() if "." in rel else ""
    expected = _EXTENSION_FORMAT.get(ext)
    if expected and r.format and expected != r.format:
        found.append(
            _warn(
                rel,
                "wrong_extension",
                f"The file is a {r.format} picture but is named .{ext}.",
                f"Rename it to .{r.format.lower().replace('jpeg', 'jpg')} so every tool reads it the same way.",
            )
        )
    if r.frames > 1:
        found.append(
            _warn(
                rel,
                "animated",
                f"This is an animation ({r.frames} frames); training would use only the first frame.",
                "Export the frame you want as a PNG and use that instead.",
            )
        )
    elif r.format and r.format not in TRAINABLE_FORMATS:
        found.append(
            _warn(
                rel,
                "unsupported_format",
                f"{r.format} files are skipped by the kohya trainer.",
                "Save it as PNG or JPEG.",
            )
        )
    return found


def _colour_problems(rel: str, r: ProbeRecord) -> list[FileProblem]:
    found: list[FileProblem] = []
    if r.mode == "CMYK":
        found.append(
            _warn(
                rel,
                "cmyk",
                "The picture is in CMYK (print) colours; trainers convert it crudely and colours shift.",
                "Convert it to RGB (sRGB) in your image editor and save it again.",
            )
        )
    if r.bit_depth > 8:
        found.append(
            _warn(
                rel,
                "high_bit_depth",
                f"The picture uses {r.bit_depth} bits per channel; trainers expect 8 and may "
                "load it washed out or white.",
                "Save it as an 8-bit PNG or a JPEG.",
            )
        )
    if r.mode in _GRAY_MODES:
        found.append(
            _warn(
                rel,
                "grayscale",
                "The picture is black and white; the LoRA may learn to drain colour.",
                "Keep it only if black-and-white is part of the style, and say so in its caption.",
            )
        )
    if r.transparent:
        found.append(
            _warn(
                rel,
                "transparency",
                "The picture has transparent areas; training fills them with black.",
                "Flatten it onto the background you want (white, a colour, a texture) and save it again.",
            )
        )
    elif r.mode == "P" and r.frames == 1:
        found.append(
            _warn(
                rel,
                "palette",
                "The picture uses a limited colour palette (like a GIF); it is converted to full colour for training.",
                "Fine as is unless it looks banded; otherwise export it as PNG.",
                "note",
            )
        )
    return found


def _size_problems(rel: str, r: ProbeRecord, resolution: int) -> list[FileProblem]:
    found: list[FileProblem] = []
    w, h = r.display_width, r.display_height
    if r.orientation != 1:
        found.append(
            _warn(
                rel,
                "exif_rotated",
                f"The picture is stored sideways and only shown upright ({w}x{h}) by a rotation "
                "tag; some trainers ignore the tag and learn it sideways.",
                "Open it, save it upright, and re-export without the rotation tag.",
            )
        )
    if max(w, h) < resolution // 2 or w * h < resolution * resolution // 4:
        found.append(
            _warn(
                rel,
                "too_small",
                f"At {w}x{h} it is far below the {resolution} px training size and would be blown up, looking soft.",
                f"Use a larger version (at least {resolution} px on the short side is ideal) or leave it out.",
            )
        )
    long_side, short_side = max(w, h), max(1, min(w, h))
    if long_side / short_side > EXTREME_ASPECT:
        found.append(
            _warn(
                rel,
                "extreme_aspect",
                f"Very long and narrow ({w}x{h}, about 1:{long_side / short_side:.1f}); it "
                "lands in a bucket of its own and trains poorly.",
                "Crop it into one or more pieces closer to square, or leave it out.",
            )
        )
    return found


def file_problems(rel: str, r: ProbeRecord, resolution: int) -> list[FileProblem]:
    """Everything worth telling about one probed file."""
    if r.error is not None:
        return [unreadable_problem(rel, r.error, r.error_detail)]
    return [*_format_problems(rel, r), *_colour_problems(rel, r), *_size_problems(rel, r, resolution)]
