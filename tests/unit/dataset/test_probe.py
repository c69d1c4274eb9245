from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ategnatos_mcp.dataset.probe import probe_bytes
from ategnatos_mcp.dataset.problems import file_problems

# What each planted problem must be reported as (ground truth kind -> problem code).
EXPECTED = {
    "truncated_jpeg": "truncated",
    "truncated_png": "truncated",
    "zero_byte": "empty_file",
    "text_as_png": "not_an_image",
    "decompression_bomb": "too_large_to_open",
    "tiny": "too_small",
    "cmyk_jpeg": "cmyk",
    "png_16bit": "high_bit_depth",
    "animated_gif": "animated",
    "exif_orientation": "exif_rotated",
    "rgba_transparent": "transparency",
    "grayscale": "grayscale",
    "extension_mismatch": "wrong_extension",
    "extreme_aspect": "extreme_aspect",
}


def test_every_planted_problem_file_is_classified(ground: dict[str, Any], probed: dict[str, Any]) -> None:
    assert set(EXPECTED) == set(ground["bad_file_kinds"])
    for kind, paths in ground["bad_files"].items():
        verdict = ground["bad_file_kinds"][kind]["verdict"]
        for rel in paths:
            problems = file_problems(rel, probed[rel], 1024)
            codes = {p.problem for p in problems}
            assert EXPECTED[kind] in codes, (kind, rel, codes)
            blocking = any(p.severity == "blocking" for p in problems)
            assert blocking == (verdict == "unreadable"), (kind, rel, problems)


def test_healthy_images_raise_no_false_alarms(ground: dict[str, Any], probed: dict[str, Any]) -> None:
    for rel, info in ground["images"].items():
        record = probed[rel]
        assert record.ok, rel
        assert (record.display_width, record.display_height) == (info["width"], info["height"])
        codes = {p.problem for p in file_problems(rel, record, 1024)}
        assert codes <= {"too_small"}, (rel, codes)


def test_exif_rotated_size_is_the_displayed_one(ground: dict[str, Any], probed: dict[str, Any]) -> None:
    for detail in ground["bad_file_details"]:
        if detail["kind"] == "exif_orientation":
            r = probed[detail["path"]]
            assert (r.width, r.height) == (detail["width"], detail["height"])
            assert (r.display_width, r.display_height) == (detail["display_width"], detail["display_height"])


def _picture(size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(7)
    small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB")
    return small.resize(size, Image.Resampling.BICUBIC)


def _jpeg(size: tuple[int, int] = (640, 480), quality: int = 90) -> bytes:
    img = _picture(size)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_truncated_jpeg_is_caught_even_in_draft_mode() -> None:
    data = _jpeg((2048, 1536))
    assert probe_bytes(data).ok
    assert probe_bytes(data[: len(data) // 2]).error == "truncated"


def test_same_picture_resaved_keeps_its_hash_but_not_its_sha() -> None:
    a, b = probe_bytes(_jpeg(quality=95)), probe_bytes(_jpeg(quality=60))
    assert a.sha256 != b.sha256
    assert bin(a.phash ^ b.phash).count("1") <= 4


def test_mirrored_hash_matches_the_mirrored_picture() -> None:
    img = _picture((300, 200))
    buf, flipped = io.BytesIO(), io.BytesIO()
    img.save(buf, "PNG")
    img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped, "PNG")
    a, b = probe_bytes(buf.getvalue()), probe_bytes(flipped.getvalue())
    assert a.phash_mirror == b.phash
    assert a.phash != b.phash


def test_unreadable_file_is_reported_not_raised(tmp_path: Path) -> None:
    from ategnatos_mcp.dataset.probe import probe_file

    record = probe_file(str(tmp_path / "vanished.png"))
    assert record.error == "unreadable"
