"""Binary websocket frames decoded from the recorded ComfyUI 0.3.64 frames (tests/fixtures/comfyui/*.bin)."""

from __future__ import annotations

import pytest

from ategnatos_mcp.comfyui.frames import decode_binary_frame, streaming_nodes
from tests.support.fake_comfyui import FIXTURES

PNG_MAGIC = bytes.fromhex("89504e470d0a1a0a")
JPEG_MAGIC = bytes.fromhex("ffd8ffe0")


def test_a_type_1_png_frame_is_a_picture_that_names_no_node() -> None:
    image = decode_binary_frame((FIXTURES / "ws_legacy_frame_0.bin").read_bytes())
    assert image is not None
    assert (image.mime_type, image.node_id, image.prompt_id) == ("image/png", None, None)
    assert image.data.startswith(PNG_MAGIC) and len(image.data) == 114


def test_a_type_4_frame_names_its_node_and_prompt() -> None:
    image = decode_binary_frame((FIXTURES / "ws_meta_frame_0.bin").read_bytes())
    assert image is not None
    assert (image.mime_type, image.node_id, image.display_node_id) == ("image/png", "3", "3")
    assert image.prompt_id == "28dced7b-d367-4287-a246-aae86b80a856"
    assert image.data == (FIXTURES / "ws_legacy_frame_0.bin").read_bytes()[8:]  # the same picture either way


@pytest.mark.parametrize(
    ("name", "node_id"),
    [("ws_txt2img_preview_legacy_frame.bin", None), ("ws_txt2img_preview_feature_flags_frame.bin", "3")],
)
def test_latent_previews_decode_as_jpeg(name: str, node_id: str | None) -> None:
    image = decode_binary_frame((FIXTURES / name).read_bytes())
    assert image is not None
    assert (image.mime_type, image.node_id) == ("image/jpeg", node_id)
    assert image.data.startswith(JPEG_MAGIC)


def test_text_frames_unknown_types_and_broken_frames_are_not_pictures() -> None:
    # GetImageSize's TEXT frame, rebuilt from its recorded summary (ws_binary_frames_legacy.json).
    text = bytes.fromhex("00000003000000013277696474683a20") + b"32, height: 24\n batch size: 2"
    assert len(text) == 45 and text[9:].startswith(b"width: ")
    assert decode_binary_frame(text) is None
    assert decode_binary_frame(bytes.fromhex("0000000900000001") + b"x") is None
    assert decode_binary_frame(b"\x00\x00\x00\x04") is None
    assert decode_binary_frame(bytes.fromhex("00000004000000ff") + b"{not json") is None


def test_streaming_nodes_are_the_save_image_websocket_nodes() -> None:
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {}},
        "3": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    }
    assert streaming_nodes(workflow) == frozenset({"3"})
