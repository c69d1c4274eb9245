"""Previews stay within the byte budget; large pictures are downscaled."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from PIL import Image

from ategnatos_mcp.comfyui.models import SavedOutput
from ategnatos_mcp.comfyui.results import make_previews


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


async def test_small_image_is_its_own_preview(tmp_path: Path) -> None:
    saved = [_noise_png(tmp_path / "small.png", 64)]
    [(data, mime)] = await make_previews(saved, max_side=768, budget_bytes=1_000_000)
    assert mime == "image/png" and data == (tmp_path / "small.png").read_bytes()
    assert (saved[0].width, saved[0].height) == (64, 64)


async def test_small_image_over_the_budget_is_recompressed(tmp_path: Path) -> None:
    saved = [_noise_png(tmp_path / "noise.png", 96)]  # a noise PNG of ~28 KB
    [(data, mime)] = await make_previews(saved, max_side=768, budget_bytes=20_000)
    assert mime == "image/jpeg" and len(data) <= 20_000
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (96, 96)


async def test_non_image_outputs_are_saved_and_named_not_previewed(tmp_path: Path) -> None:
    import httpx

    from ategnatos_mcp.comfyui.client import ComfyUIClient
    from ategnatos_mcp.comfyui.models import JobRecord, OutputFile
    from ategnatos_mcp.comfyui.results import save_outputs

    png = (Path(__file__).resolve().parents[2] / "fixtures" / "comfyui" / "view_basic_0.png").read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.params["filename"]
        return httpx.Response(200, content=png if name.endswith(".png") else b"\x00\x01", headers={"content-type": "x"})

    record = JobRecord(job_id="j1", server="http://c", prompt_id="p", client_id="c", finished_at=1_800_000_000)
    record.outputs = {"9": [OutputFile(filename="a_00001_.png")], "12": [OutputFile(filename="clip_00001_.mp4")]}
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        saved, made = await save_outputs(
            record, ComfyUIClient("http://c", http), tmp_path, workflow={"9": {}}, preview_budget_bytes=100_000
        )
    assert [(s.node_id, s.kind, s.width) for s in saved] == [("9", "image", 64), ("12", "video", None)]
    assert Path(saved[1].path).read_bytes() == b"\x00\x01"
    assert json.loads(Path(saved[0].sidecar).read_text(encoding="utf-8"))["workflow"] == {"9": {}}
    assert len(made) == 1 and [s.previewed for s in saved] == [True, False]
    again = await make_previews(saved, max_side=256, budget_bytes=100_000)
    assert len(again) == 1
