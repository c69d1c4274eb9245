"""Pictures that ComfyUI sends only over the websocket (SaveImageWebsocket), through the pool against the fake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.comfyui.models import JobState
from tests.support.fake_comfyui import serve_fake
from tests.support.studio import pool_for, workflow

pytestmark = pytest.mark.integration


def streamed_txt2img(seed: int, batch: int = 1) -> dict[str, Any]:
    """txt2img_sd15 whose pictures leave ComfyUI only over the websocket (SaveImageWebsocket instead of SaveImage)."""
    wf = workflow("txt2img_sd15")
    wf["3"]["inputs"]["seed"] = seed
    wf["5"]["inputs"]["batch_size"] = batch
    wf["9"] = {"class_type": "SaveImageWebsocket", "inputs": {"images": ["8", 0]}}
    return wf


async def test_pictures_sent_only_over_the_websocket_are_saved_with_provenance(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        record = await pool.submit(workflow("websocket_images"))
        done = await pool.wait(record.job_id, 5)
    assert done.state is JobState.SUCCEEDED
    assert done.outputs == {} and done.texts == {"4": ["2"]}  # ComfyUI's history names no file for them
    assert [(s.node_id, s.kind) for s in done.saved] == [("3", "image"), ("3", "image")]
    assert [Path(s.path).name for s in done.saved] == [f"{record.job_id}_3_socket_0000{i}.png" for i in (1, 2)]
    assert all(Path(s.path).read_bytes() == fake.image_bytes for s in done.saved)
    sidecar = json.loads(Path(done.saved[1].sidecar).read_text(encoding="utf-8"))
    assert sidecar["received_over"] == "websocket" and sidecar["comfyui_file"] is None
    assert sidecar["node_id"] == "3" and sidecar["prompt_id"] == record.prompt_id
    assert sidecar["workflow"]["3"]["class_type"] == "SaveImageWebsocket"
    assert len(pool.previews(record.job_id)) == 2


@pytest.mark.parametrize("frames_with_metadata", [True, False], ids=["type4", "type1"])
async def test_sampler_previews_are_not_mistaken_for_results(tmp_path: Path, frames_with_metadata: bool) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.preview_frames = True  # a JPEG preview per sampler step, as with --preview-method latent2rgb
        fake.feature_flags_supported = frames_with_metadata
        done = await pool.wait((await pool.submit(streamed_txt2img(seed=1))).job_id, 5)
        saved_plain = await pool.wait((await pool.submit(workflow("txt2img_sd15"))).job_id, 5)
    assert fake.binary_sent == 3 + 1 + 3  # previews of both jobs and the one streamed picture
    assert done.state is JobState.SUCCEEDED
    assert [(s.node_id, Path(s.path).suffix) for s in done.saved] == [("9", ".png")]
    assert Path(done.saved[0].path).read_bytes() == fake.image_bytes
    assert [s.node_id for s in saved_plain.saved] == ["9"] and "socket" not in saved_plain.saved[0].path


async def test_frames_naming_no_prompt_go_to_the_job_running_on_the_shared_socket(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.feature_flags_supported = False  # an older ComfyUI: type 1 frames, no node or prompt named
        fake.hold_class = "KSampler"
        first = await pool.submit(streamed_txt2img(seed=1, batch=2))
        second = await pool.submit(streamed_txt2img(seed=2, batch=3))  # queued behind it on the same socket
        fake.hold_release.set()
        done = [await pool.wait(r.job_id, 5) for r in (first, second)]
    assert first.client_id == second.client_id
    assert [len(d.saved) for d in done] == [2, 3]
    assert all(Path(s.path).name.startswith(d.job_id) for d in done for s in d.saved)


async def test_without_a_websocket_the_answer_says_streamed_pictures_cannot_be_saved(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.refuse_ws = True
        record = await pool.submit(workflow("websocket_images"))
        done = await pool.wait(record.job_id, 5)
    assert done.state is JobState.SUCCEEDED and done.saved == []
    assert any("SaveImageWebsocket" in w and "cannot be saved" in w for w in done.warnings)


async def test_a_socket_drop_during_a_streaming_job_is_reported(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.drop_ws_on = "execution_start"
        done = await pool.wait((await pool.submit(workflow("websocket_images"))).job_id, 5)
    assert done.state is JobState.SUCCEEDED
    assert any("dropped while this job ran" in w for w in done.warnings)
