"""asset_export enlarges a small source with an upscale model on a (fake) ComfyUI over real sockets."""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import pytest
from mcp import Client
from PIL import Image

from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import load_settings
from tests.support.fake_comfyui import serve_fake

pytestmark = pytest.mark.integration


def _png(size: tuple[int, int], colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_small_source_is_upscaled_by_comfyui_before_export(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = home / "workspace" / "outputs" / "small.png"
    source.parent.mkdir(parents=True)
    source.write_bytes(_png((300, 160), "teal"))
    # The fake returns this picture as the upscale result: 4x the source, in another colour to tell them apart.
    async with serve_fake(image_bytes=_png((1200, 640), "orange")) as fake:
        settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": fake.url})
        async with Client(build_server(settings, app=build_app(settings)), raise_exceptions=False) as client:
            with anyio.fail_after(20):
                result = await client.call_tool("asset_export", {"source": str(source), "spec": "og-image"})
        sent = fake.prompts[-1]

    assert not result.is_error, result.content
    assert {node["class_type"] for node in sent.values()} >= {
        "LoadImage",
        "UpscaleModelLoader",
        "ImageUpscaleWithModel",
    }
    loader = next(node for node in sent.values() if node["class_type"] == "UpscaleModelLoader")
    assert loader["inputs"]["model_name"] == "mcp_tiny_compact_x2.safetensors"
    structured = result.structured_content
    assert structured["warnings"][0].startswith("Enlarged with the upscale model")
    assert not any("Lanczos" in w for w in structured["warnings"])
    (file,) = structured["files"]
    with Image.open(file["path"]) as im:
        assert im.size == (1200, 630)
        red, green, blue = im.convert("RGB").getpixel((600, 315))  # type: ignore[misc]
    assert red > 200 and blue < 60  # the upscaled (orange) picture was exported, not the teal source


async def test_upscale_lanczos_never_contacts_comfyui(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = home / "workspace" / "small.png"
    source.parent.mkdir(parents=True)
    source.write_bytes(_png((300, 160), "teal"))
    async with serve_fake() as fake:
        settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": fake.url})
        async with Client(build_server(settings, app=build_app(settings)), raise_exceptions=False) as client:
            result = await client.call_tool(
                "asset_export", {"source": str(source), "spec": "og-image", "upscale": "lanczos"}
            )
        requests = list(fake.requests)

    assert not result.is_error
    assert requests == []
    assert any("Lanczos" in w for w in result.structured_content["warnings"])
