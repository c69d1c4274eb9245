"""The fake ComfyUI sends picture frames the way the recorded ComfyUI 0.3.64 does (bytes and order)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.fake_comfyui import FIXTURES, serve_fake
from tests.support.fake_comfyui_routes import picture_frames

pytestmark = pytest.mark.integration

RECORDED_PROMPT = "28dced7b-d367-4287-a246-aae86b80a856"
SKIPPED = ("status", "progress_state", "feature_flags")


def _workflow() -> dict[str, Any]:
    return json.loads((FIXTURES / "workflows" / "websocket_images.json").read_text(encoding="utf-8"))


def _token_of_text(message: dict[str, Any]) -> tuple[Any, ...] | None:
    kind, data = message["type"], message["data"]
    if kind in SKIPPED:
        return None
    if kind == "progress":
        return (kind, data["node"], data["value"], data["max"])
    if kind == "execution_cached":
        return (kind, tuple(sorted(data["nodes"])))
    if kind == "executed":
        return (kind, data["node"], json.dumps(data["output"], sort_keys=True))
    return (kind, data.get("node"))


def _token_of_binary(frame: bytes) -> tuple[Any, ...]:
    kind, word = int.from_bytes(frame[:4], "big"), int.from_bytes(frame[4:8], "big")
    if kind == 4:
        meta = json.loads(frame[8 : 8 + word])
        return ("binary", 4, meta["node_id"], meta["image_type"], frame[8 + word : 8 + word + 8].hex())
    if kind == 3:
        return ("binary", 3, frame[8 : 8 + word].decode(), frame[8 + word :].decode())
    return ("binary", kind, word, frame[8:16].hex())


def _recorded(name: str) -> list[tuple[Any, ...]]:
    tokens = []
    for frame in json.loads((FIXTURES / name).read_text(encoding="utf-8"))["frames"]:
        if frame["dir"] != "server->client":
            continue
        if frame["kind"] == "text":
            if (token := _token_of_text(frame["data"])) is not None:
                tokens.append(token)
            continue
        summary = frame["summary"]
        if summary["event_type"] == 4:
            meta = summary["metadata"]
            tokens.append(("binary", 4, meta["node_id"], meta["image_type"], summary["image_magic_hex"]))
        elif summary["event_type"] == 3:
            tokens.append(("binary", 3, summary["node_id"], summary["text"]))
        else:
            tokens.append(("binary", 1, summary["image_format_code"], summary["image_magic_hex"]))
    return tokens


async def _run(url: str, client_id: str, *, flags: bool) -> list[tuple[Any, ...]]:
    tokens: list[tuple[Any, ...]] = []
    async with connect(f"{url.replace('http', 'ws')}/ws?clientId={client_id}") as ws:
        if flags:
            await ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        async with httpx.AsyncClient() as http:
            answer = await http.post(f"{url}/prompt", json={"prompt": _workflow(), "client_id": client_id})
        assert answer.status_code == 200
        with anyio.fail_after(5):
            async for frame in ws:
                if isinstance(frame, bytes):
                    tokens.append(_token_of_binary(frame))
                    continue
                message = json.loads(frame)
                if (token := _token_of_text(message)) is not None:
                    tokens.append(token)
                if message["type"] == "executing" and message["data"]["node"] is None:
                    break
    return tokens


async def test_fake_streams_save_image_websocket_pictures_like_the_recordings() -> None:
    async with serve_fake(image_bytes=(FIXTURES / "ws_legacy_frame_0.bin").read_bytes()[8:]) as fake:
        legacy = await _run(fake.url, "legacy", flags=False)  # fresh: everything runs
        with_flags = await _run(fake.url, "flags", flags=True)  # identical graph: all cached but the saver
    assert legacy == _recorded("ws_binary_frames_legacy.json")
    assert with_flags == _recorded("ws_binary_frames_feature_flags.json")


def test_fake_frame_bytes_equal_the_recorded_frames() -> None:
    png = (FIXTURES / "ws_legacy_frame_0.bin").read_bytes()[8:]
    progress, legacy = picture_frames(False, "3", "p", png, "image/png", (0, 2))
    meta, progress_after = picture_frames(True, "3", RECORDED_PROMPT, png, "image/png", (0, 2))
    assert legacy == (FIXTURES / "ws_legacy_frame_0.bin").read_bytes()
    assert meta == (FIXTURES / "ws_meta_frame_0.bin").read_bytes()
    assert isinstance(progress, str) and json.loads(progress)["data"]["value"] == 0
    assert isinstance(progress_after, str) and json.loads(progress_after)["type"] == "progress"
