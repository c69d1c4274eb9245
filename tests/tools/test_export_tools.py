"""asset_export and image_info through a real MCP client (in-memory transport)."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import pytest
from mcp import Client
from PIL import Image

from tests.conftest import FIXTURES


def _text(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


@pytest.fixture
def approved(home: Path) -> Path:
    path = home / "workspace" / "outputs" / "mascot v3.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.radial_gradient("L").convert("RGB").resize((640, 480)).save(path)
    return path


async def test_tools_publish_output_schemas(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert {"asset_export", "image_info"} <= tools.keys()
    assert "files" in tools["asset_export"].output_schema["properties"]  # type: ignore[index]
    assert "generation" in tools["image_info"].output_schema["properties"]  # type: ignore[index]


async def test_asset_export_favicon_set_lands_in_exports(client: Client, home: Path, approved: Path) -> None:
    result = await client.call_tool("asset_export", {"source": "workspace/outputs/mascot v3.png", "spec": "favicon"})

    assert not result.is_error, _text(result)
    files = result.structured_content["files"]
    assert len(files) == 7
    exports = home / "workspace" / "exports"
    assert {Path(f["path"]).parent for f in files} == {exports}
    assert (exports / "mascot-v3-favicon.ico").is_file()
    assert "mascot-v3-apple-touch-icon.png" in _text(result)
    links = [block for block in result.content if block.type == "resource_link"]
    assert len(links) == 7
    (preview,) = [block for block in result.content if block.type == "image"]
    assert preview.mime_type == "image/jpeg"
    with Image.open(io.BytesIO(base64.b64decode(preview.data))) as im:
        assert im.size == (384, 384)  # the 512 px icon, shrunk to a glance


async def test_asset_export_custom_size_with_budget(client: Client, approved: Path) -> None:
    result = await client.call_tool(
        "asset_export",
        {"source": str(approved), "width": 300, "height": 200, "format": "webp", "max_bytes": 4096, "name": "banner"},
    )

    assert not result.is_error, _text(result)
    (file,) = result.structured_content["files"]
    assert (file["width"], file["height"], file["format"]) == (300, 200, "webp")
    assert Path(file["path"]).name == "banner-300x200.webp"
    assert Path(file["path"]).stat().st_size <= 4096


async def test_asset_export_refuses_a_source_outside_the_project(client: Client, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (10, 10)).save(outside)

    result = await client.call_tool("asset_export", {"source": str(outside), "spec": "avatar"})

    assert result.is_error
    assert "outside the folders" in _text(result)


async def test_asset_export_without_size_or_spec_explains_what_to_give(client: Client, approved: Path) -> None:
    result = await client.call_tool("asset_export", {"source": str(approved)})

    assert result.is_error
    assert "og-image" in _text(result)


async def test_image_info_reads_comfyui_parameters(client: Client, home: Path) -> None:
    target = home / "workspace" / "outputs" / "view_txt2img.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "imageinfo" / "view_txt2img.png", target)

    result = await client.call_tool("image_info", {"path": "workspace/outputs/view_txt2img.png"})

    assert not result.is_error, _text(result)
    gen = result.structured_content["generation"]
    assert (gen["source"], gen["positive_prompt"], gen["seed"]) == ("comfyui", "a red fox in the snow", 42)
    assert "Prompt: a red fox in the snow" in _text(result)


async def test_image_info_on_a_missing_file_is_a_tool_error(client: Client) -> None:
    result = await client.call_tool("image_info", {"path": "workspace/nope.png"})

    assert result.is_error
    assert "does not exist" in _text(result)


async def test_export_specs_resource_lists_the_specs(client: Client) -> None:
    read = await client.read_resource("ategnatos://export/specs")

    specs = json.loads(read.contents[0].text)["specs"]  # type: ignore[union-attr]
    assert "favicon" in {spec["name"] for spec in specs}
