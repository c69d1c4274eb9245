"""The art journey an artist walks, through a real MCP client against the fake ComfyUI on 127.0.0.1:
prompt -> submit -> feedback -> adjust -> submit -> revert -> submit -> approve -> export.

Every call passes what the previous answer returned as it is, plus the artist's own words: no argument is
added or edited by hand. The studio starts empty; the checkpoint comes from what ComfyUI lists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp import Client

from ategnatos_mcp.art import ArtAsset
from ategnatos_mcp.eye import EYE_DOCUMENT, EyeProfile, apply_change
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio import STUDIO_DOCUMENT, StudioInventory
from tests.support.fake_comfyui import serve_fake
from tests.support.studio import studio

PONY = "ponyDiffusionV6XL_v6StartWithThisOne.safetensors"
# What kohya / ComfyUI write into a checkpoint's safetensors header (modelspec), as /view_metadata returns it.
PONY_METADATA = {"modelspec.architecture": "stable-diffusion-xl-v1-base", "modelspec.title": "Pony Diffusion V6 XL"}
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


async def _ok(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool}: {_text(result)}"
    assert result.structured_content is not None
    return result.structured_content


def _graph_inputs(prompt: dict[str, Any]) -> dict[str, Any]:
    """What a submitted graph asks ComfyUI for, node by node (the output file prefix aside)."""
    return {node: {k: v for k, v in spec["inputs"].items() if k != "filename_prefix"} for node, spec in prompt.items()}


async def test_the_art_journey_runs_on_what_each_answer_returned(home: Path) -> None:
    store = GrimoireStore(home / "grimoire")
    async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
        apply_change(upd.doc, "add", now=NOW, category="color", text="warm earth tones", terms=["earth tones"])
        apply_change(upd.doc, "add", now=NOW, category="anti-preferences", text="neon colours", level="never")
    async with serve_fake() as fake, studio(home, fake) as client:
        fake.add_model("checkpoints", PONY)
        fake.model_metadata[("checkpoints", PONY)] = PONY_METADATA

        # 1. The artist's words; the family in the name they know it by.
        built = await _ok(client, "art_prompt", {
            "intent": "the mascot fox in a cyberpunk city at night with glowing neon signs",
            "family": "Pony Diffusion V6 XL", "aspect_ratio": "banner",
            "project": "launch", "asset": "banner"})  # fmt: skip
        draft = built["draft"]
        assert "the mascot fox in a cyberpunk city at night" in draft["positive"] and "neon" not in draft["positive"]
        assert "'with glowing neon signs'" in draft["conflicts"][0]
        assert PONY in built["family_choice"] and "Pony Diffusion V6 XL" in built["family_choice"]
        v1_args = built["comfyui_submit"]
        assert v1_args["params"]["checkpoint"] == PONY and v1_args["version"] == 1

        # 2. Submit exactly that; the job logs itself on version 1.
        first = await _ok(client, "comfyui_submit", v1_args)
        assert first["state"] == "succeeded" and "Logged on launch/banner version 1" in first["asset_log"]
        v1_graph = _graph_inputs(fake.prompts[-1])

        # 3. The artist looks and reacts; adjust from that version.
        adjusted = await _ok(client, "art_prompt", {"mode": "adjust", "feedback": "warmer, less busy",
                                                   "project": "launch", "asset": "banner"})  # fmt: skip
        v2_args = adjusted["comfyui_submit"]
        assert v2_args["version"] == 2 and v2_args["params"]["checkpoint"] == PONY
        assert v2_args["params"]["seed"] == first["seed"]  # same seed: only the feedback changes the picture
        assert v2_args["params"]["prompt"] != v1_args["params"]["prompt"]
        second = await _ok(client, "comfyui_submit", v2_args)
        assert "version 2" in second["asset_log"]

        # 4. "Go back to version 1": the revert's arguments make version 1's picture again, exactly.
        reverted = await _ok(client, "art_iterations", {"action": "revert", "version": 1,
                                                        "project": "launch", "asset": "banner"})  # fmt: skip
        v3_args = reverted["comfyui_submit"]
        assert v3_args["version"] == 3
        assert v3_args["params"] == {**v1_args["params"], "seed": first["seed"]}
        third = await _ok(client, "comfyui_submit", v3_args)
        assert third["seed"] == first["seed"]
        assert _graph_inputs(fake.prompts[-1]) == v1_graph

        # 5. Approve, then export the approved picture as a YouTube banner.
        await _ok(client, "art_iterations", {"action": "approve", "project": "launch", "asset": "banner"})
        exported = await _ok(client, "asset_export", {"project": "launch", "asset": "banner",
                                                       "spec": "youtube-banner"})  # fmt: skip
        [file] = exported["files"]
        assert (file["width"], file["height"], file["format"]) == (2560, 1440, "jpeg")
        assert Path(file["path"]).is_file() and file["bytes"] <= 6_000_000

    doc = await GrimoireStore(home / "grimoire" / "projects" / "launch" / "assets" / "banner").read("asset", ArtAsset)
    versions = {it.version: it for it in doc.iterations}
    assert doc.approved_version == 3 and set(versions) == {1, 2, 3}
    for it in versions.values():  # everything needed to make each version again
        assert it.checkpoint == PONY and it.template == "txt2img-sdxl" and it.settings.seed == first["seed"]
        assert it.outputs and Path(it.outputs[0]).is_file() and it.job_ids
    assert versions[3].positive == versions[1].positive and versions[3].based_on == 1
    inventory = await store.read(STUDIO_DOCUMENT, StudioInventory)
    [learned] = [m for m in inventory.models if m.name == PONY]
    assert learned.base == "pony" and "modelspec" not in learned.provenance and "metadata" in learned.provenance
