"""Small image builders for the export and image-info tests (written to tmp_path, never committed)."""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

from PIL import Image, ImageCms, ImageDraw


def noisy_image(path: Path, size: tuple[int, int] = (1600, 1200), seed: int = 7) -> Path:
    """Random colour blocks and noise: hard to compress, so byte budgets really bite."""
    rng = random.Random(seed)
    im = Image.effect_noise(size, 60).convert("RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(120):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 200)), fill=colour)
    im.save(path)
    return path


def subject_at_right(path: Path) -> Path:
    """A flat grey 900x300 picture with a busy red subject near the right edge (x 720..860)."""
    im = Image.new("RGB", (900, 300), (128, 128, 128))
    draw = ImageDraw.Draw(im)
    for i in range(14):
        draw.ellipse((720 + (i % 4) * 30, 20 + i * 18, 760 + (i % 4) * 30, 60 + i * 18), fill=(220, 20 + i * 10, 30))
    im.save(path)
    return path


def swapped_primaries_profile() -> bytes:
    """An RGB ICC profile whose red and blue primaries are swapped: converting it to sRGB turns red into blue.

    Built from littlecms's sRGB by swapping the rXYZ/bXYZ tag offsets and renaming it.
    """
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = struct.unpack(">I", data[128:132])[0]
    entries = {bytes(data[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    data[red + 4 : red + 12], data[blue + 4 : blue + 12] = data[blue + 4 : blue + 12], data[red + 4 : red + 12]
    data = data.replace("sRGB built-in".encode("utf-16-be"), "Swapped RB xx".encode("utf-16-be"))
    data[84:100] = bytes(16)  # profile id (MD5) no longer matches: zero means "not computed"
    return bytes(data)


def profile_description(icc: bytes) -> str:
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
