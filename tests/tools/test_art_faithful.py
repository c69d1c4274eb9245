"""Issue 15, point by point, through a real MCP client (in memory) against the fake ComfyUI on 127.0.0.1.

(The whole journey with no hand-edited argument is tests/tools/test_art_journey.py.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from ategnatos_mcp.art import ArtAsset
from ategnatos_mcp.state import GrimoireStore
from tests.support.fake_comfyui import FIXTURES, serve_fake
from tests.support.studio import SD15, studio

DAY = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
WHERE = {"project": "launch", "asset": "mascot"}


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


async def _ok(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool}: {_text(result)}"
    assert result.structured_content is not None
    return result.structured_content


async def _asset(home: Path) -> ArtAsset:
    return await GrimoireStore(home / "grimoire" / "projects" / "launch" / "assets" / "mascot").read("asset", ArtAsset)


# 1. Prompt building never drops the subject ---------------------------------------------------------------
async def test_a_never_word_in_a_sentence_takes_only_its_phrase(home: Path) -> None:
    async with studio(home, urls=["http://127.0.0.1:9"]) as client:
        await _ok(client, "eye_update", {"action": "add", "category": "anti-preferences", "text": "neon colours",
                                         "level": "never"})  # fmt: skip
        result = await client.call_tool("art_prompt", {
            "intent": "the mascot fox in a cyberpunk city at night with glowing neon signs", "family": "sdxl"})  # fmt: skip
    draft = result.structured_content["draft"]  # type: ignore[index]
    assert draft["positive"] == "high quality, detailed, the mascot fox in a cyberpunk city at night"
    assert "CONFLICT: The request asks for 'with glowing neon signs'" in _text(result)
    assert "I left out exactly 'with glowing neon signs' and kept the rest" in _text(result)


# 2. Iterations reproduce; comfyui_submit logs itself; export takes an asset's version --------------------------
async def test_a_job_still_running_is_logged_and_completed_by_comfyui_job(home: Path) -> None:
    async with serve_fake(node_seconds=0.05) as fake, studio(home, fake) as client:
        built = await _ok(client, "art_prompt", {"intent": "fox mascot", "family": "sd15", **WHERE})
        args = built["comfyui_submit"]
        assert args["params"]["checkpoint"] == SD15  # the only SD1.5 checkpoint ComfyUI lists
        started = await _ok(client, "comfyui_submit", {**args, "wait_seconds": 0})
        assert started["state"] in ("queued", "running") and "added when it finishes" in started["asset_log"]
        assert (await _asset(home)).version(1).outputs == []  # type: ignore[union-attr]
        with anyio.fail_after(10):
            done = await _ok(client, "comfyui_job", {"job_id": started["job_id"], "wait_seconds": 10})
    assert done["state"] == "succeeded" and "Logged on launch/mascot version 1" in done["asset_log"]
    v1 = (await _asset(home)).version(1)
    assert v1 is not None and v1.outputs == [done["files"][0]["path"]] and v1.settings.seed == done["seed"]
    assert v1.job_ids == [done["job_id"]] and v1.checkpoint == SD15 and v1.template == "txt2img-sdxl"


async def test_a_prompt_edited_before_submitting_is_logged_as_its_own_version(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        built = await _ok(client, "art_prompt", {"intent": "fox mascot", "family": "sd15", **WHERE})
        args = built["comfyui_submit"]
        args["params"] = {**args["params"], "prompt": "a fox mascot, by hand", "steps": 3}
        job = await _ok(client, "comfyui_submit", args)
        assert "logged as a new version" in job["asset_log"] and "version 2" in job["asset_log"]
        lone = await client.call_tool("comfyui_submit", {**args, "asset": None})
        assert lone.is_error and "project and an asset" in _text(lone)
        # A log that cannot be written never costs the artist the picture.
        stray = await _ok(client, "comfyui_submit", {**args, "version": 99})
        assert stray["state"] == "succeeded" and stray["files"]
        assert "logging it on the asset failed" in stray["asset_log"] and "no version 99" in stray["asset_log"]
    doc = await _asset(home)
    v1, v2 = doc.version(1), doc.version(2)
    assert v1 is not None and v2 is not None and not v1.outputs
    assert (v2.origin, v2.based_on, v2.positive, v2.settings.steps) == ("logged", 1, "a fox mascot, by hand", 3)
    assert v2.settings.seed == job["seed"] and v2.outputs and v2.checkpoint == SD15


async def test_a_version_made_with_a_saved_workflow_records_it_and_revert_says_so(home: Path) -> None:
    graph = json.loads((FIXTURES / "workflows" / "basic_empty_invert_save.json").read_text(encoding="utf-8"))
    async with serve_fake() as fake, studio(home, fake) as client:
        await _ok(client, "workflow_manage", {"action": "save", "name": "inverted", "workflow": graph})
        await _ok(client, "art_prompt", {"intent": "fox mascot", "family": "sd15", **WHERE})
        made = await _ok(client, "comfyui_submit", {"workflow": "inverted", "version": 1, **WHERE})
        inline = await _ok(client, "comfyui_submit", {"workflow": graph, "version": 1, **WHERE})
        reverted = await _ok(client, "art_iterations", {"action": "revert", "version": 1, **WHERE})
    assert "version 1" in made["asset_log"] and "save it with workflow_manage" in inline["asset_log"]
    v1 = (await _asset(home)).version(1)
    assert v1 is not None and v1.workflow == "inverted" and len(v1.outputs) == 4  # two jobs, two pictures each
    assert reverted["comfyui_submit"] is None and "workflow='inverted'" in reverted["submit_note"]


async def test_export_takes_the_approved_or_the_nth_version_and_the_asset_size(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        await _ok(
            client, "art_iterations", {"action": "spec", "width": 600, "height": 300, "formats": ["webp"], **WHERE}
        )
        for intent in ("fox mascot", "fox mascot, waving"):
            built = await _ok(client, "art_prompt", {"intent": intent, "family": "sd15", **WHERE})
            await _ok(client, "comfyui_submit", built["comfyui_submit"])
        early = await client.call_tool("asset_export", WHERE)
        assert early.is_error and "No version of launch/mascot is approved" in _text(early)
        await _ok(client, "art_iterations", {"action": "approve", "version": 2, **WHERE})
        approved = await _ok(client, "asset_export", WHERE)
        first = await _ok(client, "asset_export", {**WHERE, "version": 1, "spec": "avatar"})
    doc = await _asset(home)
    [file] = approved["files"]
    assert approved["source"] == doc.version(2).outputs[0]  # type: ignore[union-attr]
    assert (file["width"], file["height"], file["format"]) == (600, 300, "webp")
    assert first["source"] == doc.version(1).outputs[0]  # type: ignore[union-attr]


# 3. The studio learns what ComfyUI has --------------------------------------------------------------------------
async def test_a_checkpoint_only_comfyui_lists_is_usable_with_its_family_guessed_and_correctable(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        fake.add_model("checkpoints", "illustriousXL_v01.safetensors")
        fake.add_model("loras", "inkwash_v1.safetensors")
        fake.model_metadata[("loras", "inkwash_v1.safetensors")] = {"ss_base_model_version": "sdxl_base_v1-0"}
        built = await _ok(client, "art_prompt", {"intent": "fox", "checkpoint": "illustriousXL_v01.safetensors",
                                                 "loras": ["inkwash_v1.safetensors:0.7"]})  # fmt: skip
        assert built["draft"]["family"] == "illustrious"
        assert "I guessed Illustrious XL / NoobAI-XL from 'illustrious' in the file name" in built["family_choice"]
        assert "studio_register" in built["family_choice"]
        assert built["comfyui_submit"]["params"]["checkpoint"] == "illustriousXL_v01.safetensors"
        assert any("made for sdxl" in w for w in built["draft"]["warnings"])  # the LoRA's guessed base, said
        # The artist knows better: it is a Pony merge.
        await _ok(client, "studio_register", {"kind": "model", "action": "update",
                                              "name": "illustriousXL_v01.safetensors", "base": "PDXL"})  # fmt: skip
        again = await _ok(client, "art_prompt", {"intent": "fox", "checkpoint": "illustriousXL_v01.safetensors"})
    assert again["draft"]["family"] == "pony" and "guessed" not in again["family_choice"]
    studio_md = (home / "grimoire" / "studio.md").read_text(encoding="utf-8")
    assert "inkwash_v1.safetensors" in studio_md and "mcp_random_sd15_layout.safetensors" in studio_md


# 4. Family facts with sources -----------------------------------------------------------------------------------
async def test_every_why_the_artist_reads_is_in_the_model_database_with_sources(home: Path) -> None:
    async with studio(home, urls=["http://127.0.0.1:9"]) as client:
        index = json.loads((await client.read_resource("ategnatos://art/families")).contents[0].text)  # type: ignore[union-attr]
        families = [
            json.loads((await client.read_resource(entry["uri"])).contents[0].text)  # type: ignore[union-attr]
            for entry in index["families"]
        ]
        for family in families:
            data = await _ok(client, "art_prompt", {"intent": "a fox, (waving:1.2)", "family": family["id"],
                                                    "aspect_ratio": "16:9"})  # fmt: skip
            facts = {e["fact"]: e["why"] for e in data["draft"]["explanations"] if e.get("fact")}
            assert {"prompt_style", "weights", "sizes", "settings"} <= set(facts)
            for key, why in facts.items():
                fact = family["facts"][key]
                assert why.startswith(fact["text"]) and fact["sources"], (family["id"], key)
                assert all(family["sources"][i]["url"].startswith("https://") for i in fact["sources"])
    sdxl = next(f for f in families if f["id"] == "sdxl")
    assert "booru" not in sdxl["facts"]["prompt_style"]["text"]


# 5. Taste with weight -------------------------------------------------------------------------------------------
async def test_confirmed_taste_weighs_more_and_the_answer_says_why(home: Path) -> None:
    async with studio(home, urls=["http://127.0.0.1:9"]) as client:
        app = client.app  # type: ignore[attr-defined]
        app.clock = lambda: DAY
        await _ok(client, "eye_update", {"action": "add", "category": "color", "text": "amber light"})
        await _ok(client, "eye_update", {"action": "add", "category": "color", "text": "teal shadows"})
        await _ok(client, "eye_update", {"action": "add", "category": "anti-preferences", "text": "glossy 3d"})
        await _ok(client, "eye_update", {"action": "add", "category": "anti-preferences", "text": "neon",
                                         "level": "never"})  # fmt: skip
        for day in range(1, 6):  # confirmed in six sessions in all
            app.clock = lambda day=day: DAY + timedelta(days=day)
            await _ok(client, "eye_update", {"action": "confirm", "text": "amber light"})
        result = await client.call_tool("art_prompt", {"intent": "a fox", "family": "pony"})
        flux = await _ok(client, "art_prompt", {"intent": "A fox on a hill", "family": "flux1"})
    draft = result.structured_content["draft"]  # type: ignore[index]
    assert "(amber light:1.3), teal shadows" in draft["positive"]
    assert "glossy 3d, " in draft["negative"] + ", " and "(neon:1.3)" in draft["negative"]
    text = _text(result)
    assert "amber light (6 sessions: 1.3), teal shadows (1 session: 1.0)" in text
    assert "NEVER terms weigh 1.3" in text
    assert flux["draft"]["positive"] == "A fox on a hill. Amber light, teal shadows."


# 6. Export specs for banners, headers, thumbnails -------------------------------------------------------------
async def test_banner_asks_which_platform_and_a_platform_spec_exports_with_its_source(home: Path) -> None:
    picture = home / "workspace" / "fox.png"
    picture.write_bytes((FIXTURES / "view_txt2img.png").read_bytes())
    async with studio(home, urls=["http://127.0.0.1:9"]) as client:
        which = await client.call_tool("asset_export", {"source": str(picture), "spec": "banner"})
        header = await client.call_tool("asset_export", {"source": str(picture), "spec": "twitter header",
                                                         "upscale": "lanczos"})  # fmt: skip
    assert which.is_error and "youtube-banner (2560x1440)" in _text(which) and "patreon-banner" in _text(which)
    [file] = header.structured_content["files"]  # type: ignore[index]
    assert (file["width"], file["height"]) == (1500, 500)
    assert "Sizes from X Help Center" in _text(header)


# 7. Code-running and network nodes from what ComfyUI says; unknown custom nodes named ---------------------------
def _workflow(middle: str) -> dict[str, Any]:
    graph = json.loads((FIXTURES / "workflows" / "basic_empty_invert_save.json").read_text(encoding="utf-8"))
    graph["2"]["class_type"] = middle
    return graph


def _custom_node(pack: str, **required: Any) -> dict[str, Any]:
    return {"input": {"required": {"image": ["IMAGE"], **required}}, "output": ["IMAGE"], "output_is_list": [False],
            "output_name": ["IMAGE"], "name": "x", "python_module": f"custom_nodes.{pack}", "category": "image",
            "output_node": False}  # fmt: skip


async def test_a_custom_node_that_runs_code_needs_consent_and_an_unknown_one_is_named(home: Path) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        fake.custom_nodes["TidyImage"] = _custom_node("handy-tools", code=["STRING", {"multiline": True}])
        fake.custom_nodes["SoftGlow"] = _custom_node("comfyui-glowfx")
        graph = _workflow("TidyImage")
        graph["2"]["inputs"]["code"] = "print('hi')"
        refused = await client.call_tool("comfyui_submit", {"workflow": graph})
        queued_before = len(fake.prompts)
        agreed = await _ok(client, "comfyui_submit", {"workflow": graph, "allow_flagged_nodes": True})
        unknown = await _ok(client, "comfyui_submit", {"workflow": _workflow("SoftGlow")})
    assert refused.is_error and "TidyImage (from the custom node pack 'handy-tools')" in _text(refused)
    assert "arbitrary code" in _text(refused) and queued_before == 0
    assert agreed["state"] == "succeeded"
    assert unknown["state"] == "succeeded"
    assert any("'comfyui-glowfx', which Ategnatos has no facts about" in w for w in unknown["warnings"])
