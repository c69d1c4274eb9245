"""One family vocabulary: every name the catalogue knows works in every tool that takes a family, and means
the same canonical id there (art_prompt, train_plan, eye_update / eye_query, studio_register)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client

from ategnatos_mcp.comfyui.templates import list_templates
from ategnatos_mcp.families import canonical_family, family_ids, load_catalogue, resolve_family
from ategnatos_mcp.studio import StudioInventory, register_entry
from ategnatos_mcp.training import resolve_family as training_family
from ategnatos_mcp.training.families import load_families

# The names the issue found refused by train_plan, then every id, display name and alias in the catalogue.
ISSUE_NAMES = [("FLUX.1 dev", "flux1"), ("PDXL", "pony"), ("Pony Diffusion V6 XL", "pony"), ("sd-xl", "sdxl"),
               ("v1-5", "sd15"), ("noob", "illustrious")]  # fmt: skip
ALIASES = ISSUE_NAMES + [
    (name, family.id) for family in load_catalogue().families for name in (family.id, family.name, *family.aliases)
]
# Tools that write files for every call (a training plan, the studio view) take one name per family plus the
# issue's; every alias goes through their domain resolver below, which is the same function.
SOME = ISSUE_NAMES + [(family.name, family.id) for family in load_catalogue().families]


async def _ok(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool} {args}: {result.content}"
    assert result.structured_content is not None
    return result.structured_content


def test_the_catalogue_resolves_every_alias_and_nothing_else() -> None:
    assert len(ALIASES) > 50
    for name, expected in ALIASES:
        assert resolve_family(name).id == expected, name
        assert canonical_family(f"  {name.upper()} ") == expected, name
    assert canonical_family("Hunyuan DiT") == "hunyuandit"  # unknown: kept, normalised, never guessed


def test_art_training_and_comfyui_data_use_only_catalogue_ids() -> None:
    assert set(load_families()) == set(family_ids())
    assert {t.family for t in list_templates()} <= {*family_ids(), "any"}
    for name, expected in ALIASES:
        assert training_family(name).key == expected, name
        inventory = StudioInventory()
        register_entry(inventory, "lora", "add", "x", {"base_model": name})
        assert inventory.loras[0].base_model == expected, name


async def test_every_alias_builds_an_art_prompt_for_its_family(client: Client) -> None:
    for name, expected in ALIASES:
        data = await _ok(client, "art_prompt", {"intent": "a fox mascot", "family": name})
        assert data["draft"]["family"] == expected, name


async def test_every_alias_plans_training_on_its_family(client: Client, home: Path) -> None:
    folder = home / "workspace" / "datasets" / "ink"
    folder.mkdir(parents=True)
    for i in range(12):
        (folder / f"ink{i}.png").write_bytes(b"fake png")
        (folder / f"ink{i}.txt").write_text("ink_style, a drawing", encoding="utf-8")
    args = {"name": "ink", "dataset_path": "workspace/datasets/ink", "training_type": "style",
            "base_model": "/models/base.safetensors", "gpu_vram_gb": 24}  # fmt: skip
    for name, expected in SOME:
        data = await _ok(client, "train_plan", {**args, "family": name})
        assert data["config"]["family"] == expected, name


async def test_every_alias_scopes_eye_entries_to_one_family(client: Client) -> None:
    for family in load_catalogue().families:
        await _ok(
            client,
            "eye_update",
            {"action": "add", "category": "color", "text": f"{family.id} palette", "families": [family.aliases[-1]]},
        )
    for name, expected in ALIASES:
        data = await _ok(client, "eye_query", {"family": name})
        assert data["positive_terms"] == [f"{expected} palette"], name


async def test_an_eye_entry_tagged_with_any_alias_shapes_prompts_and_never_alike(client: Client) -> None:
    await _ok(client, "eye_update", {"action": "add", "category": "color", "text": "amber light",
                                     "families": ["Pony Diffusion"]})  # fmt: skip
    await _ok(client, "eye_update", {"action": "add", "category": "anti-preferences", "text": "chrome",
                                     "level": "never", "families": ["PonyXL"]})  # fmt: skip
    data = await _ok(client, "art_prompt", {"intent": "a fox mascot", "family": "PDXL"})
    assert "amber light" in data["draft"]["positive"]
    assert "(chrome:1.3)" in data["draft"]["negative"]
    other = await _ok(client, "art_prompt", {"intent": "a fox mascot", "family": "sdxl"})
    assert "amber" not in other["draft"]["positive"] and "chrome" not in other["draft"]["negative"]


async def test_unknown_families_are_refused_with_the_known_ones_by_every_tool_that_writes(client: Client) -> None:
    # (train_plan refuses "dalle" too: tests/tools/test_training_tools.py)
    calls = [("art_prompt", {"intent": "fox", "family": "dalle"}),
             ("eye_update", {"action": "add", "category": "color", "text": "teal", "families": ["dalle"]})]  # fmt: skip
    for tool, args in calls:
        result = await client.call_tool(tool, args)
        text = result.content[0].text  # type: ignore[union-attr]
        assert result.is_error and "dalle" in text and "pony" in text, (tool, text)
    # eye_query only reads: for a family it does not know, the entries meant for every family still apply.
    await _ok(client, "eye_update", {"action": "add", "category": "color", "text": "teal"})
    assert (await _ok(client, "eye_query", {"family": "dalle"}))["positive_terms"] == ["teal"]


async def test_every_alias_registers_a_studio_model_under_its_family_id(client: Client) -> None:
    for index, (name, expected) in enumerate(SOME):
        data = await _ok(client, "studio_register", {"kind": "model", "action": "add", "name": f"m{index}",
                                                    "model_kind": "checkpoint", "base": name})  # fmt: skip
        assert data["entry"]["base"] == expected, name
    lora = await _ok(client, "studio_register", {"kind": "lora", "action": "add", "name": "ink", "base": "PDXL"})
    assert lora["entry"]["base_model"] == "pony"
    odd = await _ok(client, "studio_register", {"kind": "model", "action": "add", "name": "hy", "base": "Hunyuan"})
    assert odd["entry"]["base"] == "Hunyuan" and "not a model family Ategnatos knows" in odd["message"]
