"""The art tools through a real MCP client (in-memory transport), on a real grimoire in tmp_path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError

from ategnatos_mcp.eye import EYE_DOCUMENT, EyeProfile, apply_change
from ategnatos_mcp.studio import STUDIO_DOCUMENT, LoraEntry, StudioInventory
from ategnatos_mcp.wiring import Wiring

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def _text(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def _ok(client: Client, tool: str, args: dict) -> dict:
    result = await client.call_tool(tool, args)
    assert not result.is_error, _text(result)
    return result.structured_content


@pytest.fixture
def fixed_clock(app: Wiring) -> Wiring:
    app.clock = lambda: NOW
    return app


async def test_art_tools_are_listed_with_output_schemas(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ("art_prompt", "art_iterations", "art_library"):
        assert tools[name].description and tools[name].output_schema, name
    assert "draft" in tools["art_prompt"].output_schema["properties"]


async def test_build_reads_the_eye_and_studio_and_flags_a_never_request(client: Client, app: Wiring) -> None:
    async with app.store.update(EYE_DOCUMENT, EyeProfile) as upd:
        apply_change(upd.doc, "add", now=NOW, category="color", text="warm earth tones", terms=["earth tones"])
        apply_change(upd.doc, "add", now=NOW, category="anti-preferences", text="neon", level="never")
    async with app.store.update(STUDIO_DOCUMENT, StudioInventory) as upd:
        upd.doc.loras.append(LoraEntry(name="inkwash", trigger_words=["inkwash style"], base_model="Pony"))
    eye_before = (app.settings.grimoire_dir / ".state" / "eye.json").read_bytes()

    result = await client.call_tool(
        "art_prompt",
        {"intent": "fox mascot, neon sign", "family": "Pony", "aspect_ratio": "1200x630", "loras": ["inkwash:0.8"]},
    )
    assert not result.is_error, _text(result)
    draft = result.structured_content["draft"]
    assert draft["positive"] == (
        "score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, rating_safe, fox mascot, earth tones, "
        "inkwash style"
    )
    assert "(neon:1.3)" in draft["negative"].split(", ")  # NEVER weighs more than AVOID
    assert draft["conflicts"] and "neon" in draft["conflicts"][0]
    assert draft["loras"] == [{"name": "inkwash", "weight": 0.8, "trigger_words": ["inkwash style"]}]
    assert (draft["settings"]["width"], draft["settings"]["height"], draft["settings"]["clip_skip"]) == (1344, 768, 2)
    assert "CONFLICT" in _text(result) and "comfyui_submit" in _text(result)
    assert (app.settings.grimoire_dir / ".state" / "eye.json").read_bytes() == eye_before


async def test_flux_prompt_through_the_tool_has_no_weights(client: Client) -> None:
    data = await _ok(client, "art_prompt", {"intent": "A (red:1.5) kite over the sea", "family": "flux1"})
    assert data["draft"]["positive"] == "A red kite over the sea"
    assert data["draft"]["settings"]["guidance"] == 3.5
    assert data["comfyui_submit"]["template"] == "txt2img-flux"
    assert data["comfyui_submit"]["params"]["prompt"] == "A red kite over the sea"


async def test_feedback_loop_revert_and_approve(client: Client, fixed_clock: Wiring, home: Path) -> None:
    where = {"project": "launch page", "asset": "mascot"}
    built = await _ok(client, "art_prompt", {"intent": "fox mascot, waving", "family": "sdxl", "seed": 7, **where})
    assert built["version"] == 1

    adjusted = await client.call_tool(
        "art_prompt", {"mode": "adjust", "feedback": "too busy, a bit warmer, more sparkle", **where}
    )
    data = adjusted.structured_content
    assert data["version"] == 2 and data["based_on"] == 1
    assert "(simple background:1.2)" in data["draft"]["positive"]
    assert "(warm color palette:1.1)" in data["draft"]["positive"]  # "a bit" halves the step
    assert "cluttered" in data["draft"]["negative"]
    assert data["draft"]["unrecognized_feedback"] == ["more sparkle"]
    assert "Not in the feedback mapping: more sparkle" in _text(adjusted)

    logged = await _ok(
        client, "art_iterations", {"action": "log", "version": 2, "outputs": ["workspace/outputs/v2.png"], **where}
    )
    assert logged["detail"]["outputs"] == [str((home / "workspace" / "outputs" / "v2.png").resolve())]
    outside = await client.call_tool(
        "art_iterations", {"action": "log", "version": 2, "outputs": ["/etc/passwd"], **where}
    )
    assert outside.is_error and "outside the folders" in _text(outside)
    reverted = await _ok(client, "art_iterations", {"action": "revert", "version": 1, **where})
    history = await _ok(client, "art_iterations", {"action": "history", "version": 1, **where})
    v1 = history["detail"]
    assert reverted["detail"]["version"] == 3
    for key in ("positive", "negative", "positive_terms", "negative_terms", "settings", "loras"):
        assert reverted["detail"][key] == v1[key], key
    assert v1["feedback"] == "too busy, a bit warmer, more sparkle"

    warmer = await _ok(client, "art_iterations", {"action": "revert", "version": 1, "feedback": "warmer", **where})
    assert warmer["detail"]["version"] == 4 and warmer["detail"]["based_on"] == 1
    assert warmer["draft"]["positive"] == v1["positive"] + ", (warm color palette:1.2), golden hour lighting"

    approved = await _ok(
        client,
        "art_iterations",
        {"action": "approve", "version": 4, "save_as": "warm mascot", "tags": ["mascot"], **where},
    )
    assert approved["approved_version"] == 4
    again = await _ok(client, "art_iterations", {"action": "approve", "version": 4, "save_as": "warm mascot", **where})
    assert again["library_entry"] is None and "not saved to the library" in again["notices"][0]
    assert [s["text"] for s in approved["eye_suggestions"]] == ["warm colour palette"]
    assert approved["library_entry"]["source"] == "launch page/mascot/v4"
    folder = home / "grimoire" / "projects" / "launch page" / "assets" / "mascot"
    assert "Version 4 · sdxl" in (folder / "approved.md").read_text(encoding="utf-8")
    assert "## Version 4" in (folder / "iterations.md").read_text(encoding="utf-8")
    assert json.loads((folder / ".state" / "asset.json").read_text(encoding="utf-8"))["approved_version"] == 4
    assert not (home / "grimoire" / ".state" / "eye.json").exists()


async def test_library_save_search_and_get(client: Client, home: Path) -> None:
    saved = await _ok(
        client,
        "art_library",
        {
            "action": "save",
            "name": "cosy cabin",
            "family": "Flux",
            "positive": "A cosy cabin in snow",
            "tags": ["scene"],
        },
    )
    assert saved["entry"]["family"] == "flux1"
    assert (home / "grimoire" / "library" / "flux1" / "cosy cabin.md").is_file()
    found = await _ok(client, "art_library", {"action": "search", "query": "cabin", "tags": ["scene"]})
    assert [m["name"] for m in found["matches"]] == ["cosy cabin"]
    got = await _ok(client, "art_library", {"action": "get", "name": "cosy cabin", "family": "flux1"})
    assert got["entry"]["positive"] == "A cosy cabin in snow"
    built = await _ok(client, "art_prompt", {"intent": "a cabin at dusk", "family": "flux1"})
    assert [m["name"] for m in built["draft"]["similar"]] == ["cosy cabin"]


async def test_plain_language_errors_reach_the_model(client: Client) -> None:
    unknown = await client.call_tool("art_prompt", {"intent": "fox", "family": "midjourney"})
    assert unknown.is_error and "I don't know the model family" in _text(unknown) and "Next step" in _text(unknown)
    no_family = await client.call_tool("art_prompt", {"intent": "fox"})
    assert no_family.is_error and "Which model" in _text(no_family)
    escape = await client.call_tool("art_iterations", {"action": "history", "project": "../x", "asset": "a"})
    assert escape.is_error and "cannot be used as a project name" in _text(escape)
    missing = await client.call_tool("art_iterations", {"action": "history", "project": "p", "asset": "a"})
    assert missing.is_error and "no history" in _text(missing)
    nothing = await client.call_tool("art_prompt", {"mode": "adjust", "family": "sdxl", "positive": "fox"})
    assert nothing.is_error and "no feedback" in _text(nothing)


async def test_adjusting_a_prompt_given_as_text_and_logging_an_outside_prompt(client: Client) -> None:
    data = await _ok(
        client,
        "art_prompt",
        {"mode": "adjust", "family": "sd15", "positive": "fox, (busy background:1.1)", "feedback": "cleaner"},
    )
    assert data["version"] is None
    assert data["draft"]["positive"] == "fox, (simple background:1.2), minimalist composition, negative space"
    assert data["draft"]["negative"] == "cluttered, busy background"

    logged = await _ok(
        client,
        "art_iterations",
        {
            "action": "log",
            "project": "p",
            "asset": "a",
            "family": "pony",
            "positive": "score_9, fox",
            "negative": "lowres",
            "seed": 42,
            "feedback": "love it",
        },
    )
    assert logged["detail"]["origin"] == "logged" and logged["detail"]["positive"] == "score_9, fox"
    assert logged["detail"]["settings"]["seed"] == 42 and logged["versions"][0]["feedback"] == "love it"


def test_the_server_starts_without_importing_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ategnatos_mcp.server;"
        "heavy = {'PIL', 'imagehash', 'numpy', 'asyncssh', 'jinja2', 'yaml', 'websockets'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def _resource_json(client: Client, uri: str) -> Any:
    return json.loads((await client.read_resource(uri)).contents[0].text)  # type: ignore[union-attr]


async def test_model_database_and_feedback_mapping_are_indexes_with_one_uri_per_entry(client: Client) -> None:
    families = await _resource_json(client, "ategnatos://art/families")
    assert {f["id"] for f in families["families"]} >= {"sd15", "sdxl", "pony", "illustrious", "flux1", "sd35"}
    pony = next(f for f in families["families"] if f["id"] == "pony")
    full = await _resource_json(client, pony["uri"])
    assert full["id"] == "pony" and full["score_tags"] and full["aliases"] == pony["aliases"]
    by_alias = await _resource_json(client, f"ategnatos://art/families/{pony['aliases'][0]}")
    assert by_alias == full
    feedback = await _resource_json(client, "ategnatos://art/feedback")
    dark = next(rule for rule in feedback["rules"] if "too dark" in rule["phrases"])
    rule = await _resource_json(client, dark["uri"])
    assert rule["id"] == dark["id"] and rule["default"]
    assert feedback["intensity"]
    # the indexes stay small; each entry is read on its own
    for uri in ("ategnatos://art/families", "ategnatos://art/feedback"):
        assert len((await client.read_resource(uri)).contents[0].text) < 12_000  # type: ignore[union-attr]


async def test_an_unknown_family_or_feedback_rule_resource_is_refused_in_plain_words(client: Client) -> None:
    for uri, said in (
        ("ategnatos://art/families/nosuch", "model family 'nosuch'"),
        ("ategnatos://art/feedback/nosuch", "no feedback rule 'nosuch'"),
    ):
        with pytest.raises(MCPError) as refused:
            await client.read_resource(uri)
        assert said in str(refused.value)


async def test_the_asset_spec_sets_the_size_when_no_aspect_is_given(client: Client) -> None:
    where = {"project": "site", "asset": "og image"}
    spec = await _ok(
        client, "art_iterations", {"action": "spec", "purpose": "OG image", "width": 1200, "height": 630, **where}
    )
    assert spec["spec"]["width"] == 1200
    built = await _ok(client, "art_prompt", {"intent": "fox mascot", "family": "sdxl", **where})
    assert (built["draft"]["settings"]["width"], built["draft"]["settings"]["height"]) == (1344, 768)
    again = await _ok(client, "art_prompt", {"intent": "fox mascot, jumping", **where})
    assert again["draft"]["family"] == "sdxl" and again["version"] == 2


async def test_approval_proposes_confirming_the_eye_entries_behind_it_once_a_day(
    client: Client, fixed_clock: Wiring, home: Path
) -> None:
    last_week = NOW - timedelta(days=7)
    async with fixed_clock.store.update(EYE_DOCUMENT, EyeProfile) as upd:
        apply_change(upd.doc, "add", now=last_week, category="color", text="warm light", terms=["warm color palette"])
        apply_change(upd.doc, "add", now=last_week, category="texture", text="visible brushwork")
    eye_file = home / "grimoire" / ".state" / "eye.json"
    eye_before = eye_file.read_bytes()
    where = {"project": "launch page", "asset": "mascot"}
    built = await _ok(client, "art_prompt", {"intent": "fox mascot", "family": "sdxl", **where})
    assert set(built["draft"]["eye_entries"]) == {"color-warm-light", "texture-visible-brushwork"}
    await _ok(client, "art_prompt", {"mode": "adjust", "feedback": "warmer", **where})  # hint: warm colour palette
    await _ok(
        client, "art_iterations", {"action": "log", "version": 2, "outputs": ["workspace/outputs/v2.png"], **where}
    )

    result = await client.call_tool("art_iterations", {"action": "approve", "version": 2, "notes": "this one", **where})
    assert not result.is_error, _text(result)
    proposals = result.structured_content["eye_suggestions"]
    assert [(p["action"], p["entry_id"]) for p in proposals] == [
        ("confirm", "color-warm-light"),  # proposed once, though the 'warmer' feedback points at it too
        ("confirm", "texture-visible-brushwork"),
    ]
    image = str((home / "workspace" / "outputs" / "v2.png").resolve())
    assert {p["note"] for p in proposals} == {f'Approved launch page/mascot v2 ({image}): "this one".'}
    assert f"Evidence (eye_update note): Approved launch page/mascot v2 ({image})" in _text(result)
    assert eye_file.read_bytes() == eye_before  # art_iterations only proposes; the eye writes the eye

    for p in proposals:  # Claude asks the artist, who agrees; eye_update records each with its evidence
        await _ok(client, "eye_update", {"action": p["action"], "entry_id": p["entry_id"], "note": p["note"]})
    profile = await fixed_clock.store.read(EYE_DOCUMENT, EyeProfile)
    warm = profile.find("color-warm-light")
    assert warm is not None and warm.confirmations == 2 and warm.evidence[-1].note == proposals[0]["note"]
    again = await _ok(client, "art_iterations", {"action": "approve", "version": 2, **where})
    assert again["eye_suggestions"] == []  # both were confirmed today; eye_update would not count them again


async def test_a_pasted_novel_is_refused_by_the_argument_it_went_into(client: Client, app: Wiring) -> None:
    huge = "a lighthouse at dusk, " * 1000  # 22,000 characters where a prompt or a note belongs
    before = sorted(p.relative_to(app.settings.home) for p in app.settings.home.rglob("*"))
    for tool, args, field in [
        ("art_prompt", {"intent": huge, "family": "sdxl"}, "intent"),
        ("art_iterations", {"action": "approve", "project": "p", "asset": "a", "notes": huge}, "notes"),
        ("art_library", {"action": "save", "name": "x", "family": "sdxl", "positive": huge}, "positive"),
        ("art_library", {"action": "search", "tags": ["t"] * 100}, "tags"),
    ]:
        result = await client.call_tool(tool, args)
        assert result.is_error, (tool, field)
        text = _text(result)
        assert f"The arguments of {tool} need fixing:" in text and f"`{field}` should have at most" in text, text
        assert len(text) < 1000  # the pasted text is not echoed back
    assert sorted(p.relative_to(app.settings.home) for p in app.settings.home.rglob("*")) == before
