"""Previews stay within the byte budget; large pictures are downscaled."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from ategnatos_mcp.comfyui.models import SavedOutput
from ategnatos_mcp.comfyui.results import make_previews

pytestmark = pytest.mark.anyio


def _noise_png(path: Path, size: int) -> SavedOutput:
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(path, format="PNG")
    return SavedOutput(node_id="9", kind="image", path=str(path), sidecar=str(path) + ".json")


async def test_previews_of_many_large_images_fit_the_budget_and_are_downscaled(tmp_path: Path) -> None:
    saved = [_noise_png(tmp_path / f"{i}.png", 1024) for i in range(4)]
    saved.append(SavedOutput(node_id="9", kind="video", path=str(tmp_path / "v.mp4"), sidecar=""))
    previews = await make_previews(saved, max_side=512, budget_bytes=300_000)
    assert len(previews) == 4
    assert sum(len(data) for data, _ in previews) <= 300_000
    for data, mime in previews:
        assert mime == "image/jpeg"
        with Image.open(io.BytesIO(data)) as img:
            assert max(img.size) <= 512
    assert [s.previewed for s in saved] == [True, True, True, True, False]


async def test_small_image_keeps_its_size(tmp_path: Path) -> None:
    saved = [_noise_png(tmp_path / "small.png", 64)]
    [(data, _)] = await make_previews(saved, max_side=768, budget_bytes=1_000_000)
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (64, 64)
