"""ComfyUIClient over real sockets against the fake ComfyUI (shapes from the recordings)."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from ategnatos_mcp.comfyui.client import ComfyUIClient, PromptRejected
from ategnatos_mcp.comfyui.models import OutputFile, PromptRejection
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError, UpstreamError
from tests.support.fake_comfyui import FIXTURES, serve_fake

pytestmark = pytest.mark.integration


def workflow(name: str) -> dict:
    return json.loads((FIXTURES / "workflows" / f"{name}.json").read_text(encoding="utf-8"))


async def test_websocket_lifecycle_matches_the_recorded_order() -> None:
    async with serve_fake() as fake, httpx.AsyncClient() as http:
        client = ComfyUIClient(fake.url, http)
        kinds: list[str] = []
        async with client.events("cid-1") as events:
            accepted = await client.submit(workflow("basic_empty_invert_save"), client_id="cid-1")
            with anyio.fail_after(5):
                async for event in events:
                    kinds.append(event.type)
                    if event.type == "executing" and event.data["node"] is None:
                        break
        entry = await client.history(accepted.prompt_id)
    # status broadcasts and progress_state are skipped; the job's own events arrive in the recorded order
    assert kinds == ["execution_start", "execution_cached", "executing", "executing", "executing", "executed"] + [
        "execution_success",
        "executing",
    ]
    assert entry is not None and entry.status_str == "success" and entry.client_id == "cid-1"
    assert [f.filename for f in entry.outputs["3"]] == ["mcp_basic_00001_.png", "mcp_basic_00002_.png"]


async def test_upload_rules_same_bytes_reuse_different_bytes_rename_overwrite_replaces() -> None:
    png = (FIXTURES / "upload_source_rgba.png").read_bytes()
    async with serve_fake() as fake, httpx.AsyncClient() as http:
        client = ComfyUIClient(fake.url, http)
        first = await client.upload_image(png, "a.png")
        same = await client.upload_image(png, "a.png")
        other = await client.upload_image(png + b"x", "a.png")
        replaced = await client.upload_image(png + b"y", "a.png", overwrite=True)
        nested = await client.upload_image(png, "a.png", subfolder="refs")
        with pytest.raises(InvalidRequestError):
            await client.upload_image(png, "a.png", subfolder="../up")
        data, _ = await client.view(OutputFile(filename="a.png", type="input"))
    assert (first.name, same.name, other.name, replaced.name) == ("a.png", "a.png", "a (1).png", "a.png")
    assert nested.reference == "refs/a.png"
    assert data == png + b"y"


async def test_rejected_prompt_carries_comfyui_node_errors() -> None:
    async with serve_fake() as fake, httpx.AsyncClient() as http:
        client = ComfyUIClient(fake.url, http)
        with pytest.raises(PromptRejected) as caught:
            await client.submit(workflow("error_c_invalid_value_not_in_list"), client_id="c")
    errors = caught.value.rejection.node_errors["1"].errors
    assert errors[0].type == "value_not_in_list" and errors[0].extra_info["input_name"] == "ckpt_name"


async def test_missing_output_file_is_not_found() -> None:
    async with serve_fake() as fake, httpx.AsyncClient() as http:
        with pytest.raises(NotFoundError):
            await ComfyUIClient(fake.url, http).view(OutputFile(filename="gone.png"))


async def test_a_slow_server_times_out_with_a_plain_message() -> None:
    async with serve_fake() as fake, httpx.AsyncClient() as http:
        fake.response_delay = 2.0
        with pytest.raises(UpstreamError) as caught:
            await ComfyUIClient(fake.url, http, timeout=0.3).queue()
    assert caught.value.retryable and "did not finish answering GET /queue within 0.3 s" in caught.value.message


async def test_queue_delete_and_interrupt_reach_the_server() -> None:
    async with serve_fake() as fake, httpx.AsyncClient() as http:
        client = ComfyUIClient(fake.url, http)
        fake.hold_class = "KSampler"
        running = await client.submit(workflow("txt2img_sd15"), client_id="c")
        second = workflow("txt2img_sd15")
        second["3"]["inputs"]["seed"] = 9
        pending = await client.submit(second, client_id="c")
        with anyio.fail_after(5):
            await fake.hold_reached.wait()
        queue = await client.queue()
        await client.delete_from_queue([pending.prompt_id])
        after_delete = await client.queue()
        async with client.events("c") as events:
            await client.interrupt(running.prompt_id)
            with anyio.fail_after(5):
                async for event in events:
                    if event.type == "executing" and event.data.get("node") is None:
                        break
        entry = await client.history(running.prompt_id)
    assert entry is not None
    assert (queue.running, queue.pending) == ([running.prompt_id], [pending.prompt_id])
    assert after_delete.pending == []
    assert entry.message("execution_interrupted") is not None and entry.status_str == "error"


async def test_a_websocket_handshake_that_never_comes_fails_after_the_open_timeout_not_the_request_timeout() -> None:
    async with serve_fake() as fake, httpx.AsyncClient() as http:
        fake.hang_ws = True
        client = ComfyUIClient(fake.url, http, timeout=30, ws_open_timeout=0.2)
        with anyio.fail_after(5), pytest.raises(UpstreamError) as caught:
            async with client.events("cid-hang"):
                pass
        assert await client.system_stats()  # the HTTP side answers all along
    assert fake.ws_hung == 1
    assert caught.value.retryable and "live connection" in caught.value.message
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_the_fake_refuses_a_loop_as_the_recorded_comfyui_does() -> None:
    cases = json.loads((FIXTURES / "post_prompt_validation_errors.json").read_text(encoding="utf-8"))["cases"]
    recorded = PromptRejection.model_validate(cases["q_self_cycle"]["response"]["body"])
    two_node_loop = workflow("basic_empty_invert_save")
    two_node_loop["1"] = {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}}
    async with serve_fake() as fake, httpx.AsyncClient() as http:
        client = ComfyUIClient(fake.url, http)
        for looped in (workflow("error_q_self_cycle"), two_node_loop):
            with pytest.raises(PromptRejected) as refused:
                await client.submit(looped, client_id="c")
            assert refused.value.rejection == recorded
        assert fake.history == {} and fake.queue == []
