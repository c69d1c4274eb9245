"""The ComfyUI tools through a real MCP client (in memory) against fake ComfyUI servers on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from ategnatos_mcp.studio import STUDIO_DOCUMENT, LoraEntry, StudioInventory
from tests.support.fake_comfyui import FIXTURES, serve_fake
from tests.support.studio import SD15, studio


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


async def test_submit_template_streams_progress_and_returns_previews_and_files(home: Path) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with serve_fake(node_seconds=0.01) as fake, studio(home, fake) as client:
        params = {"prompt": "a red fox mascot", "checkpoint": SD15, "width": 512, "height": 512, "steps": 4}
        result = await client.call_tool(
            "comfyui_submit",
            {"template": "txt2img-sdxl", "params": params, "wait_seconds": 10},
            progress_callback=on_progress,
        )
    assert not result.is_error, _text(result)
    data = result.structured_content
    assert data["state"] == "succeeded" and isinstance(data["seed"], int)
    [saved] = data["files"]
    assert Path(saved["path"]).is_file() and saved["path"].startswith(str(home / "workspace" / "outputs"))
    assert saved["previewed"] is True
    sidecar = json.loads(Path(saved["sidecar"]).read_text(encoding="utf-8"))
    assert sidecar["template"] == "txt2img-sdxl" and sidecar["seed"] == data["seed"]
    [image] = [c for c in result.content if c.type == "image"]
    # The fake's picture is 64 px: small enough to be its own preview (larger ones become JPEGs, see test_results).
    assert image.mime_type == "image/png" and base64.b64decode(image.data) == Path(saved["path"]).read_bytes()
    assert any(c.type == "resource_link" for c in result.content)
    assert seen and seen[-1] == 100.0


async def test_lora_stack_is_chained_and_trigger_words_come_from_the_studio(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        fake.add_model("loras", "mascot.safetensors")
        fake.add_model("loras", "ink.safetensors")
        app = client.app  # type: ignore[attr-defined]
        async with app.store.update(STUDIO_DOCUMENT, StudioInventory) as upd:
            upd.doc.loras.append(LoraEntry(name="mascot.safetensors", trigger_words=["mscfox"], weight_max=0.8))
        args = {
            "template": "lora-test",
            "params": {"prompt": "waving", "checkpoint": SD15, "width": 64, "height": 64, "steps": 1},
            "loras": [{"name": "mascot.safetensors"}, {"name": "ink.safetensors", "weight": 0.5}],
        }
        result = await client.call_tool("comfyui_submit", args)
        assert not result.is_error, _text(result)
        sent = fake.prompts[-1]
    loaders = {k: v for k, v in sent.items() if v["class_type"] == "LoraLoader"}
    assert [(v["inputs"]["lora_name"], v["inputs"]["strength_model"]) for v in loaders.values()] == [
        ("mascot.safetensors", 0.8),
        ("ink.safetensors", 0.5),
    ]
    first, second = loaders
    assert loaders[first]["inputs"]["model"] == ["4", 0] and loaders[second]["inputs"]["model"] == [first, 0]
    assert loaders[first]["inputs"]["clip"] == ["4", 1] and loaders[second]["inputs"]["clip"] == [first, 1]
    # checkpoint -> LoRAs -> clip skip -> both text encoders
    [skip] = [k for k, v in sent.items() if v["class_type"] == "CLIPSetLastLayer"]
    assert sent[skip]["inputs"] == {"stop_at_clip_layer": -1, "clip": [second, 1]}
    assert sent["3"]["inputs"]["model"] == [second, 0]
    assert sent["6"]["inputs"]["clip"] == sent["7"]["inputs"]["clip"] == [skip, 0]
    assert sent["6"]["inputs"]["text"] == "mscfox, waving"
    assert result.structured_content["seed"] == 42


async def test_a_pony_prompt_from_art_prompt_runs_with_clip_skip_2(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        built = await client.call_tool("art_prompt", {"intent": "fox mascot, waving", "family": "pony", "seed": 5})
        assert not built.is_error, _text(built)
        suggestion = built.structured_content["comfyui_submit"]
        assert suggestion["template"] == "txt2img-sdxl" and suggestion["params"]["clip_skip"] == 2
        args = {**suggestion, "params": {**suggestion["params"], "checkpoint": SD15}}  # the fake's checkpoint
        args.pop("note", None)
        result = await client.call_tool("comfyui_submit", args)
        assert not result.is_error, _text(result)
        sent = fake.prompts[-1]
    [skip] = [v for v in sent.values() if v["class_type"] == "CLIPSetLastLayer"]
    assert skip["inputs"]["stop_at_clip_layer"] == -2
    assert sent["3"]["inputs"]["seed"] == 5 and sent["3"]["inputs"]["sampler_name"] == "euler_ancestral"
    assert result.structured_content["state"] == "succeeded"


async def test_an_sd35_prompt_from_art_prompt_runs_on_the_sd35_template(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        built = await client.call_tool("art_prompt", {"intent": "A fox reading a map", "family": "sd35"})
        assert not built.is_error, _text(built)
        suggestion = built.structured_content["comfyui_submit"]
        assert suggestion["template"] == "txt2img-sd35"
        args = {k: v for k, v in suggestion.items() if k != "note"}
        args["params"] = {**suggestion["params"], "checkpoint": SD15, "steps": 2}
        result = await client.call_tool("comfyui_submit", args)
        assert not result.is_error, _text(result)
        sent = fake.prompts[-1]
    classes = {v["class_type"] for v in sent.values()}
    assert {"EmptySD3LatentImage", "ModelSamplingSD3"} <= classes and "CLIPSetLastLayer" not in classes
    assert sent["6"]["inputs"]["text"] == "A fox reading a map" and sent["3"]["inputs"]["cfg"] == 3.5
    assert result.structured_content["state"] == "succeeded"


async def test_submit_without_a_websocket_still_returns_the_pictures_and_says_progress_is_off(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        fake.refuse_ws = True
        params = {"prompt": "a fox", "checkpoint": SD15, "width": 64, "height": 64, "steps": 2}
        result = await client.call_tool("comfyui_submit", {"template": "txt2img-sdxl", "params": params})
    assert not result.is_error, _text(result)
    data = result.structured_content
    assert data["state"] == "succeeded" and data["live_progress"] is False and len(data["files"]) == 1
    assert Path(data["files"][0]["path"]).read_bytes() == fake.image_bytes
    assert "no live progress" in _text(result) and fake.ws_refused == 1


async def test_validation_errors_name_every_problem_before_queueing(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        params = {"prompt": "x", "checkpoint": "mcp_random_sd15.ckpt", "sampler": "eulr", "steps": 1}
        result = await client.call_tool("comfyui_submit", {"template": "txt2img-sdxl", "params": params})
        posted = [p for m, p in fake.requests if m == "POST"]
    assert result.is_error
    text = _text(result)
    assert "checkpoint 'mcp_random_sd15.ckpt'" in text and SD15 in text
    assert "sampler 'eulr'" in text and "euler" in text
    assert "Nothing was queued" in text
    assert posted == []


async def test_server_down_gives_a_plain_message_with_how_to_start_comfyui(home: Path) -> None:
    async with studio(home, urls=["http://127.0.0.1:9"]) as client:
        status = await client.call_tool("comfyui_status", {})
        submit = await client.call_tool("comfyui_submit", {"template": "txt2img-sdxl", "params": {"prompt": "x"}})
    assert not status.is_error
    assert status.structured_content["servers"][0]["reachable"] is False
    assert "Start ComfyUI" in _text(status)
    assert submit.is_error and "Start ComfyUI" in _text(submit)


async def test_status_lists_models_per_server(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        result = await client.call_tool("comfyui_status", {})
    [server] = result.structured_content["servers"]
    assert server["reachable"] and server["version"] == "0.3.64"
    assert server["models"]["checkpoints"] == [SD15]


async def test_job_survives_a_websocket_drop_and_is_picked_up_by_comfyui_job(home: Path) -> None:
    async with serve_fake(node_seconds=0.05) as fake, studio(home, fake) as client:
        fake.drop_ws_on = "executing"
        wf = json.loads((FIXTURES / "workflows" / "txt2img_sd15.json").read_text(encoding="utf-8"))
        first = await client.call_tool("comfyui_submit", {"workflow": wf, "wait_seconds": 0})
        job_id = first.structured_content["job_id"]
        assert first.structured_content["state"] in ("queued", "running")
        with anyio.fail_after(10):
            done = await client.call_tool("comfyui_job", {"job_id": job_id, "action": "wait", "wait_seconds": 10})
    assert done.structured_content["state"] == "succeeded"
    assert len(done.structured_content["files"]) == 1
    assert [c.type for c in done.content].count("image") == 1


async def test_cancel_through_comfyui_job(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        fake.hold_class = "KSampler"
        wf = json.loads((FIXTURES / "workflows" / "txt2img_sd15.json").read_text(encoding="utf-8"))
        first = await client.call_tool("comfyui_submit", {"workflow": wf, "wait_seconds": 0})
        with anyio.fail_after(5):
            await fake.hold_reached.wait()
        done = await client.call_tool("comfyui_job", {"job_id": first.structured_content["job_id"], "action": "cancel"})
    assert done.structured_content["state"] == "interrupted"


async def test_upload_image_for_img2img_is_confined_to_the_project(home: Path) -> None:
    picture = home / "workspace" / "ref.png"
    picture.write_bytes((FIXTURES / "upload_source_rgba.png").read_bytes())
    async with serve_fake() as fake, studio(home, fake) as client:
        params = {"prompt": "x", "checkpoint": SD15, "steps": 1, "image": str(picture)}
        ok = await client.call_tool("comfyui_submit", {"template": "img2img-sdxl", "params": params})
        outside = await client.call_tool(
            "comfyui_submit", {"template": "img2img-sdxl", "params": {**params, "image": "/etc/hostname"}}
        )
        sent = fake.prompts[-1]
    assert not ok.is_error, _text(ok)
    assert sent["10"]["inputs"]["image"] == "ategnatos/ref.png"
    assert outside.is_error and "outside the folders" in _text(outside)


async def test_template_images_can_come_through_the_images_argument(home: Path) -> None:
    picture = home / "workspace" / "up.png"
    picture.write_bytes((FIXTURES / "upload_source_rgba.png").read_bytes())
    async with serve_fake() as fake, studio(home, fake) as client:
        args = {"template": "upscale-esrgan", "params": {"upscale_model": "mcp_tiny_compact_x2.safetensors"}}
        ok = await client.call_tool("comfyui_submit", {**args, "images": {"image": str(picture)}})
        wrong = await client.call_tool("comfyui_submit", {**args, "images": {"picture": str(picture)}})
        sent = fake.prompts[-1]
    assert not ok.is_error, _text(ok)
    assert sent["1"]["inputs"]["image"] == "ategnatos/up.png"
    assert wrong.is_error and "no image input 'picture'" in _text(wrong) and "image" in _text(wrong)


async def test_two_fake_servers_share_eight_jobs(home: Path) -> None:
    async with serve_fake() as a, serve_fake() as b, studio(home, a, b) as client:
        a.hold_class = b.hold_class = "SaveImage"  # jobs pile up until released, so queues decide the routing
        wf = json.loads((FIXTURES / "workflows" / "basic_empty_invert_save.json").read_text(encoding="utf-8"))
        jobs = []
        for i in range(8):
            wf["1"]["inputs"]["color"] = i
            result = await client.call_tool("comfyui_submit", {"workflow": wf, "wait_seconds": 0})
            assert not result.is_error, _text(result)
            jobs.append(result.structured_content["job_id"])
        a.hold_release.set()
        b.hold_release.set()
        with anyio.fail_after(10):
            done = [await client.call_tool("comfyui_job", {"job_id": j, "wait_seconds": 10}) for j in jobs]
    servers = [d.structured_content["server"] for d in done]
    assert all(d.structured_content["state"] == "succeeded" for d in done)
    assert servers.count(a.url) == 4 and servers.count(b.url) == 4


async def test_workflow_manage_saves_lists_gets_and_deletes(home: Path) -> None:
    wf = json.loads((FIXTURES / "workflows" / "basic_empty_invert_save.json").read_text(encoding="utf-8"))
    async with studio(home, urls=["http://127.0.0.1:9"]) as client:
        saved = await client.call_tool("workflow_manage", {"action": "save", "name": "invert", "workflow": wf})
        listed = await client.call_tool("workflow_manage", {"action": "list"})
        resource = await client.read_resource("ategnatos://workflows/invert")
        template = await client.read_resource("ategnatos://workflows/upscale-esrgan")
        deleted = await client.call_tool("workflow_manage", {"action": "delete", "name": "invert"})
        missing = await client.call_tool("workflow_manage", {"action": "get", "name": "invert"})
    assert not saved.is_error
    assert saved.structured_content["path"] == str(home / "grimoire" / "workflows" / "invert.json")
    assert not (home / "grimoire" / "workflows" / "invert.json").exists()
    names = [t["name"] for t in listed.structured_content["templates"]]
    assert len(names) == 11 and {"upscale-esrgan", "txt2img-sd35", "lora-test-flux", "lora-test-sd35"} <= set(names)
    assert [w["name"] for w in listed.structured_content["workflows"]] == ["invert"]
    assert json.loads(getattr(resource.contents[0], "text", "")) == wf
    assert json.loads(getattr(template.contents[0], "text", ""))["name"] == "upscale-esrgan"
    assert not deleted.is_error and missing.is_error and "no saved workflow" in _text(missing)


async def test_workflow_manage_imports_an_editor_export_using_the_server_catalogue(home: Path) -> None:
    ui = json.loads((FIXTURES / "ui_txt2img.json").read_text(encoding="utf-8"))
    async with serve_fake() as fake, studio(home, fake) as client:
        saved = await client.call_tool("workflow_manage", {"action": "save", "name": "fox", "workflow": ui})
        got = await client.call_tool("workflow_manage", {"action": "get", "name": "fox"})
        run = await client.call_tool("comfyui_submit", {"workflow": "fox", "wait_seconds": 10})
    assert not saved.is_error, _text(saved)
    assert saved.structured_content["converted_from_ui"] is True
    assert saved.structured_content["saved"]["outputs"] == ["9:SaveImage"]
    assert got.structured_content["workflow"]["3"]["inputs"]["seed"] == 42
    assert run.structured_content["state"] == "succeeded"


async def test_unknown_job_id_is_a_plain_tool_error(home: Path) -> None:
    async with studio(home, urls=["http://127.0.0.1:9"]) as client:
        result = await client.call_tool("comfyui_job", {"job_id": "nope"})
    assert result.is_error and "no job 'nope'" in _text(result) and "comfyui_submit" in _text(result)


async def test_pictures_streamed_over_the_websocket_come_back_as_files_and_previews(home: Path) -> None:
    wf = json.loads((FIXTURES / "workflows" / "websocket_images.json").read_text(encoding="utf-8"))
    async with serve_fake() as fake, studio(home, fake) as client:
        result = await client.call_tool("comfyui_submit", {"workflow": wf, "wait_seconds": 10})
        assert not result.is_error, _text(result)
        job_id = result.structured_content["job_id"]
        later = await client.call_tool("comfyui_job", {"job_id": job_id, "action": "results"})
    data = result.structured_content
    assert data["state"] == "succeeded" and data["texts"] == {"4": ["2"]}
    files = data["files"]
    assert [(f["node_id"], f["kind"], f["previewed"]) for f in files] == [("3", "image", True)] * 2
    assert all(f["path"].startswith(str(home / "workspace" / "outputs")) for f in files)
    assert all(Path(f["path"]).read_bytes() == fake.image_bytes for f in files)
    assert json.loads(Path(files[0]["sidecar"]).read_text(encoding="utf-8"))["received_over"] == "websocket"
    images = [c for c in result.content if c.type == "image"]
    assert [base64.b64decode(i.data) for i in images] == [fake.image_bytes] * 2
    links = [c.uri for c in result.content if c.type == "resource_link"]
    assert links == [Path(f["path"]).as_uri() for f in files]
    assert "2 file(s) saved" in _text(result)
    assert [c for c in later.content if c.type == "image"] == images


async def test_a_websocket_that_never_answers_costs_only_its_short_open_timeout(home: Path) -> None:
    async with (
        serve_fake() as fake,
        studio(home, fake, ATEGNATOS_COMFYUI__WS_OPEN_TIMEOUT_SECONDS="0.3") as client,
    ):
        fake.hang_ws = True  # the connection is accepted, the handshake never answered
        params = {"prompt": "a fox", "checkpoint": SD15, "width": 64, "height": 64, "steps": 2}
        with anyio.fail_after(10):  # the request timeout (30 s) would blow this
            result = await client.call_tool("comfyui_submit", {"template": "txt2img-sdxl", "params": params})
    assert not result.is_error, _text(result)
    data = result.structured_content
    assert data["state"] == "succeeded" and data["live_progress"] is False and len(data["files"]) == 1
    assert "no live progress" in _text(result) and fake.ws_hung == 1


async def test_workflow_names_too_long_for_the_file_system_and_broken_saved_files_get_plain_answers(
    home: Path,
) -> None:
    from mcp import MCPError

    wide = "\U0001d54f" * 80  # 80 letters, 320 bytes: within the character limit, past the file system's 255 bytes
    node = {"1": {"class_type": "X", "inputs": {}}}
    folder = home / "grimoire" / "workflows"
    folder.mkdir(parents=True)
    (folder / "folder.json").mkdir()
    (folder / "latin1.json").write_bytes('{"1": "caf\xe9"}'.encode("latin-1"))
    (folder / "list.json").write_text("[1, 2, 3]", encoding="utf-8")
    async with studio(home, urls=["http://127.0.0.1:9"]) as client:
        answers = [
            await client.call_tool("workflow_manage", {"action": action, "name": wide, "workflow": node})
            for action in ("get", "save", "delete")
        ]
        answers.append(await client.call_tool("comfyui_submit", {"workflow": wide}))
        broken = {
            name: await client.call_tool("workflow_manage", {"action": "get", "name": name})
            for name in ("folder", "latin1", "list")
        }
        broken["submit"] = await client.call_tool("comfyui_submit", {"workflow": "list"})
        with pytest.raises(MCPError) as resource:
            await client.read_resource(f"ategnatos://workflows/{wide}")
    for answer in answers:
        assert answer.is_error and "cannot be used as a workflow name" in _text(answer), _text(answer)
        assert "fewer with emoji or non-Latin letters" in _text(answer)
    assert "cannot be used as a workflow name" in str(resource.value)
    assert "cannot be read (is a directory)" in _text(broken["folder"])
    assert "cannot be read (it is not UTF-8 text)" in _text(broken["latin1"])
    assert "holds JSON, but not a workflow" in _text(broken["list"])
    assert "holds JSON, but not a workflow" in _text(broken["submit"])
    assert all(a.is_error and "Next step:" in _text(a) for a in broken.values())
    assert sorted(p.name for p in folder.iterdir()) == ["folder.json", "latin1.json", "list.json"]


async def test_a_huge_prompt_or_workflow_is_not_echoed_back_in_successful_answers(home: Path) -> None:
    huge = "a red fox mascot, " * 60_000  # ~1 MB pasted into the prompt
    params = {"prompt": huge, "checkpoint": SD15, "width": 64, "height": 64, "steps": 1}
    workflow = json.loads((FIXTURES / "workflows" / "basic_empty_invert_save.json").read_text(encoding="utf-8"))
    workflow["3"]["_meta"] = {"title": huge}
    async with serve_fake() as fake, studio(home, fake) as client:
        fake.hold_class = "KSampler"  # still running when status is asked: an unfinished job is listed there
        submitted = await client.call_tool(
            "comfyui_submit", {"template": "txt2img-sdxl", "params": params, "wait_seconds": 0}
        )
        job_id = submitted.structured_content["job_id"]
        status = await client.call_tool("comfyui_status", {})
        fake.hold_release.set()
        finished = await client.call_tool("comfyui_job", {"job_id": job_id, "action": "wait", "wait_seconds": 10})
        saved = await client.call_tool("workflow_manage", {"action": "save", "name": "big", "workflow": workflow})
    answers = {"submit": submitted, "status": status, "job": finished, "save": saved}
    for label, answer in answers.items():
        assert not answer.is_error, (label, _text(answer))
        size = len(_text(answer)) + len(json.dumps(answer.structured_content))
        assert size < 20_000, f"{label} answered {size:,} characters"
    assert status.structured_content["jobs"][0]["params"]["prompt"].endswith("(1,080,000 characters in all)")
    assert finished.structured_content["state"] == "succeeded"
    sidecar = json.loads(Path(finished.structured_content["files"][0]["sidecar"]).read_text(encoding="utf-8"))
    assert sidecar["params"]["prompt"] == huge  # the record of what was run keeps every character
    assert saved.structured_content["saved"]["nodes"] == 3


async def test_a_workflow_with_a_loop_is_refused_before_queueing_with_the_loop_named(home: Path) -> None:
    looped = json.loads((FIXTURES / "workflows" / "basic_empty_invert_save.json").read_text(encoding="utf-8"))
    looped["1"] = {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}}
    odd = json.loads((FIXTURES / "workflows" / "basic_empty_invert_save.json").read_text(encoding="utf-8"))
    odd["2"]["class_type"] = {"not": "a name"}
    odd["3"]["inputs"] = ["images", "x"]
    async with serve_fake() as fake, studio(home, fake) as client:
        refused = await client.call_tool("comfyui_submit", {"workflow": looped})
        strange = await client.call_tool("comfyui_submit", {"workflow": odd})
    assert refused.is_error and "Nodes 1 -> 2 -> 1 form a loop" in _text(refused), _text(refused)
    assert strange.is_error and "Node 2 does not say what kind of node it is" in _text(strange), _text(strange)
    assert "Node 3 (SaveImage) has inputs that are not named values" in _text(strange)
    assert ("POST", "/prompt") not in fake.requests  # nothing reached ComfyUI
