"""The eye and studio tools through a real MCP client (in-memory transport)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import TextResourceContents

from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import load_settings
from ategnatos_mcp.wiring import Wiring
from tests.conftest import FIXTURES


def _text(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def _resource(client: Client, uri: str) -> str:
    contents = (await client.read_resource(uri)).contents[0]
    assert isinstance(contents, TextResourceContents)
    return contents.text


async def test_server_lists_the_foundation_tools_resources_and_prompts(client: Client) -> None:
    tools = {tool.name for tool in (await client.list_tools()).tools}
    assert {"eye_update", "eye_query", "studio_register", "studio_detect"} <= tools
    for tool in (await client.list_tools()).tools:
        assert tool.description, f"{tool.name} has no description"
    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    assert {"ategnatos://eye", "ategnatos://eye.json", "ategnatos://studio", "ategnatos://studio.json"} <= resources


async def test_eye_update_then_query_turns_taste_into_prompt_terms(client: Client, home: Path) -> None:
    added = await client.call_tool(
        "eye_update",
        {"action": "add", "category": "color", "text": "warm earth tones", "terms": ["earth tones", "amber"]},
    )
    assert not added.is_error, _text(added)
    assert added.structured_content["entry"]["category"] == "color"
    never = await client.call_tool(
        "eye_update",
        {"action": "add", "category": "anti-preferences", "text": "stock photo aesthetic", "level": "never"},
    )
    assert never.structured_content["entry"]["level"] == "never"
    avoid = await client.call_tool(
        "eye_update", {"action": "add", "category": "texture", "text": "glossy 3D", "level": "avoid"}
    )
    assert not avoid.is_error

    query = await client.call_tool(
        "eye_query", {"family": "sdxl", "request": "a glossy 3D mascot like a stock photo aesthetic"}
    )
    data = query.structured_content
    assert data["positive_terms"] == ["earth tones", "amber"]
    assert "stock photo aesthetic" in data["negative_terms"]
    assert data["never_conflicts"] == ["stock photo aesthetic"]
    assert data["avoid_overrides"] == ["glossy 3D"]
    assert "glossy 3D" not in data["negative_terms"]
    assert "CONFLICT" in _text(query)

    eye_md = (home / "grimoire" / "eye.md").read_text(encoding="utf-8")
    assert "- warm earth tones [confirmed: 1 session]" in eye_md
    assert "- NEVER: stock photo aesthetic [confirmed: 1 session]" in eye_md
    resource = await client.read_resource("ategnatos://eye")
    assert isinstance(resource.contents[0], TextResourceContents) and resource.contents[0].text == eye_md


async def test_confirmation_counts_once_per_day_and_evidence_is_kept(client: Client) -> None:
    await client.call_tool("eye_update", {"action": "add", "category": "style", "text": "visible brushwork"})
    again = await client.call_tool(
        "eye_update", {"action": "confirm", "text": "visible brushwork", "note": "loved the painterly one"}
    )
    assert again.structured_content["changed"] is False
    assert again.structured_content["entry"]["confirmations"] == 1
    detail = await client.call_tool("eye_query", {"detail": True})
    entry = detail.structured_content["entries"][0]
    assert [e["action"] for e in entry["evidence"]] == ["added"]


async def test_confirmation_on_a_later_day_raises_the_count(settings, app: Wiring) -> None:
    from datetime import UTC, datetime, timedelta

    day = [datetime(2026, 11, 1, 12, tzinfo=UTC)]
    app.clock = lambda: day[0]
    async with Client(build_server(settings, app=app)) as client:
        await client.call_tool("eye_update", {"action": "add", "category": "color", "text": "muted palette"})
        day[0] += timedelta(days=1)
        result = await client.call_tool("eye_update", {"action": "confirm", "text": "muted palette", "note": "again"})
        assert result.structured_content["entry"]["confirmations"] == 2
        weakened = await client.call_tool("eye_update", {"action": "weaken", "text": "muted palette"})
        assert weakened.structured_content["entry"]["confirmations"] == 1
        for _ in range(2):
            await client.call_tool("eye_update", {"action": "contradict", "text": "muted palette"})
        query = await client.call_tool("eye_query", {})
        assert query.structured_content["positive_terms"] == []
        assert query.structured_content["disputed"] == ["color-muted-palette"]
        removed = await client.call_tool("eye_update", {"action": "remove", "text": "muted palette"})
        assert removed.structured_content["total_entries"] == 0


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"action": "add", "category": "mood", "text": "gloomy"}, "color, texture, composition, style"),
        ({"action": "add", "category": "color", "text": "   "}, "empty"),
        ({"action": "add", "category": "color", "text": "x" * 100_000}, "limit is 300"),
        ({"action": "confirm", "text": "never added"}, "No taste entry"),
    ],
)
async def test_bad_eye_input_gets_a_plain_error_and_changes_nothing(
    client: Client, home: Path, arguments: dict, expected: str
) -> None:
    result = await client.call_tool("eye_update", arguments)
    assert result.is_error
    assert expected in _text(result)
    assert "Next step:" in _text(result)
    assert not (home / "grimoire" / ".state" / "eye.json").exists()


async def test_corrupt_state_file_is_reported_and_left_untouched(client: Client, home: Path) -> None:
    state = home / "grimoire" / ".state"
    state.mkdir(parents=True)
    (state / "eye.json").write_text("{not json", encoding="utf-8")
    result = await client.call_tool("eye_update", {"action": "add", "category": "color", "text": "teal"})
    assert result.is_error
    assert "damaged" in _text(result)
    assert (state / "eye.json").read_text(encoding="utf-8") == "{not json"


async def test_studio_register_adds_updates_and_removes_entries(client: Client, home: Path) -> None:
    added = await client.call_tool(
        "studio_register",
        {
            "kind": "lora",
            "action": "add",
            "name": "mibera-style-v2",
            "trigger_words": ["mibera"],
            "weight_min": 0.6,
            "weight_max": 0.8,
            "base": "Pony",
            "trained_on": "character style, 40 images",
        },
    )
    assert not added.is_error, _text(added)
    assert added.structured_content["entry"]["trigger_words"] == ["mibera"]
    updated = await client.call_tool(
        "studio_register", {"kind": "lora", "action": "update", "name": "mibera-style-v2", "weight_max": 0.9}
    )
    assert updated.structured_content["entry"]["weight_max"] == 0.9
    assert updated.structured_content["entry"]["trigger_words"] == ["mibera"]
    await client.call_tool(
        "studio_register",
        {"kind": "model", "action": "add", "name": "Pony V6 XL", "base": "SDXL", "settings": "CFG 7, clip_skip 2"},
    )
    studio_md = (home / "grimoire" / "studio.md").read_text(encoding="utf-8")
    # Families are kept by the shared catalogue's id, whatever name they were registered under.
    assert "| mibera-style-v2 | mibera | 0.6-0.9 | pony | character style, 40 images |  |" in studio_md
    assert "| Pony V6 XL | checkpoint | sdxl |  |  | CFG 7, clip_skip 2 |" in studio_md
    upside_down = await client.call_tool(
        "studio_register",
        {"kind": "lora", "action": "update", "name": "mibera-style-v2", "weight_min": 1.2, "weight_max": 0.5},
    )
    assert upside_down.is_error and "upside down" in _text(upside_down)
    missing = await client.call_tool("studio_register", {"kind": "model", "action": "remove", "name": "SD 1.5"})
    assert missing.is_error and "Pony V6 XL" in _text(missing)
    removed = await client.call_tool("studio_register", {"kind": "lora", "action": "remove", "name": "mibera-style-v2"})
    assert removed.structured_content["counts"] == {"models": 1, "loras": 0, "workflows": 0}
    as_json = json.loads(await _resource(client, "ategnatos://studio.json"))
    assert [m["name"] for m in as_json["models"]] == ["Pony V6 XL"]


def _fake_nvidia_smi(folder: Path, query_output: str, exit_status: int = 0) -> Path:
    """A real executable standing in for nvidia-smi, printing recorded output."""
    script = folder / "nvidia-smi"
    query = folder / "query.out"
    query.write_text(query_output, encoding="utf-8")
    banner = FIXTURES / "nvidia-smi" / "banner.txt"
    script.write_text(
        f'#!/bin/sh\nif [ "$#" -eq 0 ]; then cat "{banner}"; exit 0; fi\ncat "{query}"\nexit {exit_status}\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.mark.parametrize(
    ("fixture", "exit_status", "gpus", "problem"),
    [
        ("one_gpu.csv", 0, ["NVIDIA GeForce RTX 4090"], None),
        ("two_gpus.csv", 0, ["NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"], None),
        ("no_devices.txt", 6, [], "found no GPU"),
        ("driver_failed.txt", 9, [], "couldn't communicate with the NVIDIA driver"),
    ],
)
async def test_studio_detect_reads_nvidia_smi(
    home: Path, tmp_path: Path, fixture: str, exit_status: int, gpus: list[str], problem: str | None
) -> None:
    fake = _fake_nvidia_smi(tmp_path, (FIXTURES / "nvidia-smi" / fixture).read_text(), exit_status)
    settings = load_settings(
        env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9", "VAST_API_KEY": "vk-secret"},
        nvidia_smi=str(fake),
    )
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("studio_detect", {})
    assert not result.is_error, _text(result)
    env = result.structured_content["environment"]
    assert [g["name"] for g in env["gpus"]] == gpus
    if gpus:
        assert env["cuda_version"] == "12.4"
        assert env["gpus"][0]["memory_total_mib"] in {24564, 81920}
    else:
        assert problem in env["gpu_problem"]
    assert env["provider_keys"] == {"runpod": False, "vast": True, "lambda": False}
    assert env["comfyui"][0]["reachable"] is False
    assert "vk-secret" not in json.dumps(result.structured_content)
    assert "vk-secret" not in (home / "grimoire" / ".state" / "studio.json").read_text()


async def test_studio_detect_without_nvidia_smi_says_so(home: Path, tmp_path: Path) -> None:
    settings = load_settings(
        env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9"},
        nvidia_smi=str(tmp_path / "missing-nvidia-smi"),
    )
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("studio_detect", {})
    assert result.structured_content["environment"]["gpu_problem"].startswith("nvidia-smi is not installed")
    assert "No local GPU" in _text(result)


# --- the artist's own files: imported, never lost ---------------------------------------------------------------

GRIMOIRE = FIXTURES / "grimoire"
SEED_EYE_BULLETS = [
    "Warm palettes preferred (earth tones, amber, terracotta) [confirmed: 5 sessions]",
    "Muted > saturated [confirmed: 3 sessions]",
    "Painterly, visible brushwork [confirmed: 4 sessions]",
    "AVOID: flat vector, glossy 3D [confirmed: 2 sessions]",
    "Generous negative space [confirmed: 1 session]",
    "NEVER: photorealistic skin rendering [confirmed: 1 session]",
    "NEVER: stock photo aesthetic [confirmed: 1 session]",
    "Pony V6 + CFG 7 + mibera-lora@0.7 = consistent good results [confirmed: 3 approvals]",
]


async def test_an_existing_eye_md_keeps_every_entry_through_eye_update(client: Client, home: Path) -> None:
    seed = (GRIMOIRE / "seed_eye.md").read_bytes()
    eye_md = home / "grimoire" / "eye.md"
    eye_md.write_bytes(seed)  # kept by hand with the markdown version, before this server ever wrote it

    result = await client.call_tool("eye_update", {"action": "add", "category": "style", "text": "ink outlines"})

    assert not result.is_error, _text(result)
    assert result.structured_content["total_entries"] == 9
    backups = list((home / "grimoire").glob("eye.backup-*.md"))
    assert [b.read_bytes() for b in backups] == [seed]
    assert result.structured_content["notices"] == [
        "Read your own eye.md: 8 entries taken into the grimoire.",
        f"A copy of eye.md as you wrote it is kept as {backups[0].name}.",
    ]
    assert "Read your own eye.md" in _text(result)
    written = eye_md.read_text(encoding="utf-8")
    for bullet in [*SEED_EYE_BULLETS, "ink outlines [confirmed: 1 session]"]:
        assert f"- {bullet}\n" in written
    query = await client.call_tool("eye_query", {"request": "a photorealistic skin close-up"})
    assert query.structured_content["never_conflicts"] == ["photorealistic skin rendering"]
    assert query.structured_content["notices"] == []  # said once, in the answer above


async def test_an_existing_studio_md_keeps_every_entry_through_studio_register(client: Client, home: Path) -> None:
    seed = (GRIMOIRE / "seed_studio.md").read_bytes()
    studio_md = home / "grimoire" / "studio.md"
    studio_md.write_bytes(seed)

    result = await client.call_tool("studio_register", {"kind": "workflow", "action": "add", "name": "inkwash-txt2img"})

    assert not result.is_error, _text(result)
    assert result.structured_content["counts"] == {"models": 1, "loras": 1, "workflows": 1}
    notices = result.structured_content["notices"]
    assert notices[0] == "Read your own studio.md: 2 entries taken into the grimoire."
    assert notices[1].startswith("3 lines of studio.md could not be read and are kept exactly as written")
    assert "line 4 '- **Primary**: [Local RTX 4090 / RunPod A100 / Vast.ai / etc.]'" in notices[1]
    written = studio_md.read_text(encoding="utf-8")
    assert (
        "| Pony V6 XL | checkpoint | SDXL | Stylized, character | /models/checkpoints/ | CFG 7, clip_skip 2 |"
        in written
    )
    assert "| mibera-style-v2 | mibera | 0.6-0.8 |  | Character style | /models/loras/ |" in written
    assert "| inkwash-txt2img |  |  |" in written
    assert written.endswith("- **Primary**: [Local RTX 4090 / RunPod A100 / Vast.ai / etc.]\n- **CUDA**: [version]\n"
                            "- **ComfyUI**: [location, API endpoint if running]\n")  # fmt: skip
    assert [b.read_bytes() for b in (home / "grimoire").glob("studio.backup-*.md")] == [seed]


async def test_start_up_reads_hand_kept_files_and_the_first_answer_says_what_was_kept(settings, home: Path) -> None:
    (home / "grimoire" / "eye.md").write_bytes((GRIMOIRE / "eye_hand_kept.md").read_bytes())
    (home / "grimoire" / "studio.md").write_bytes((GRIMOIRE / "studio_hand_kept.md").read_bytes())

    async with Client(build_server(settings)) as client:
        state = home / "grimoire" / ".state"
        assert len(json.loads((state / "eye.json").read_text(encoding="utf-8"))["entries"]) == 12
        assert len(json.loads((state / "studio.json").read_text(encoding="utf-8"))["loras"]) == 2

        first = await client.call_tool("eye_query", {"detail": True})
        notices = first.structured_content["notices"]
        assert notices[0] == "Read your own eye.md: 12 entries taken into the grimoire."
        assert notices[-1].startswith("A copy of eye.md as you wrote it is kept as eye.backup-")
        assert "The heading 'Textrue' was read as 'Texture'." in notices
        assert any(n.startswith("5 lines of eye.md could not be read") and "'## Lighting'" in n for n in notices)
        assert "5 lines of eye.md could not be read" in _text(first)
        second = await client.call_tool("eye_query", {})
        assert second.structured_content["notices"] == []

        registered = await client.call_tool("studio_register", {"kind": "lora", "action": "update", "name": "inkwash"})
        assert (
            registered.structured_content["notices"][0] == "Read your own studio.md: 4 entries taken into the grimoire."
        )
        again = await client.call_tool("studio_register", {"kind": "lora", "action": "update", "name": "inkwash"})
        assert again.structured_content["notices"] == []
    eye_md = (home / "grimoire" / "eye.md").read_text(encoding="utf-8")
    assert "## Kept as written" in eye_md and "- rim light on hair\n" in eye_md


# --- a view cut short is not the artist's wish -----------------------------------------------------------------


async def test_an_eye_md_cut_to_its_title_changes_nothing_and_is_applied_only_on_request(
    client: Client, home: Path
) -> None:
    for text in ("ink outlines", "gold leaf", "paper grain", "muted palette", "soft edges"):
        await client.call_tool("eye_update", {"action": "add", "category": "style", "text": text})
    state = home / "grimoire" / ".state" / "eye.json"
    saved = state.read_bytes()
    eye_md = home / "grimoire" / "eye.md"
    eye_md.write_text("# Taste Profile\n", encoding="utf-8")  # a sync mishap

    query = await client.call_tool("eye_query", {})
    resource = json.loads(await _resource(client, "ategnatos://eye.json"))
    assert len(resource["entries"]) == 5
    assert query.structured_content["notices"][0].startswith("eye.md lost every entry at once.")
    assert (
        state.read_bytes() == saved and eye_md.read_text(encoding="utf-8") == "# Taste Profile\n"
    )  # reads wrote nothing

    added = await client.call_tool("eye_update", {"action": "add", "category": "color", "text": "teal shadows"})
    assert added.structured_content["total_entries"] == 6
    kept = list((home / "grimoire").glob("eye.edited-*.md"))
    assert [k.read_text(encoding="utf-8") for k in kept] == ["# Taste Profile\n"]
    assert any(f"kept as {kept[0].name}" in n and "accept_edit" in n for n in added.structured_content["notices"])
    assert "- gold leaf [confirmed: 1 session]" in eye_md.read_text(encoding="utf-8")

    accepted = await client.call_tool("eye_update", {"action": "accept_edit"})
    assert not accepted.is_error, _text(accepted)
    assert accepted.structured_content["total_entries"] == 1  # what was added after the mishap stays
    assert "5 entries removed" in accepted.structured_content["message"]
    nothing = await client.call_tool("eye_update", {"action": "accept_edit"})
    assert nothing.is_error and "No hand edit is waiting" in _text(nothing)


async def test_a_studio_md_that_lost_most_rows_is_held_and_studio_register_can_accept_it(
    client: Client, home: Path
) -> None:
    for name in ("a", "b", "c", "d", "e"):
        await client.call_tool("studio_register", {"kind": "model", "action": "add", "name": f"model {name}"})
    studio_md = home / "grimoire" / "studio.md"
    text = studio_md.read_text(encoding="utf-8")
    studio_md.write_text(
        "".join(line + "\n" for line in text.splitlines() if "| model " not in line[:9] or "| model a |" in line)
    )

    held = await client.call_tool("studio_register", {"kind": "lora", "action": "add", "name": "inkwash"})
    assert held.structured_content["counts"]["models"] == 5
    assert held.structured_content["notices"][0].startswith("studio.md lost 4 of its 5 entries at once.")
    accepted = await client.call_tool("studio_register", {"action": "accept_edit"})
    assert not accepted.is_error, _text(accepted)
    assert accepted.structured_content["counts"] == {"models": 1, "loras": 1, "workflows": 0}
    missing_kind = await client.call_tool("studio_register", {"action": "add", "name": "x"})
    assert missing_kind.is_error and "kind" in _text(missing_kind)


async def test_taste_text_with_brackets_is_kept_and_a_leading_level_word_is_refused(client: Client, home: Path) -> None:
    added = await client.call_tool("eye_update", {"action": "add", "category": "style", "text": "ink [sumi-e] wash"})
    assert not added.is_error, _text(added)
    assert "- ink \\[sumi-e\\] wash [confirmed: 1 session]" in (home / "grimoire" / "eye.md").read_text(
        encoding="utf-8"
    )
    query = await client.call_tool("eye_query", {})
    assert query.structured_content["positive_terms"] == ["ink [sumi-e] wash"]
    refused = await client.call_tool("eye_update", {"action": "add", "category": "color", "text": "Avoid: neon"})
    assert refused.is_error and "`level`" in _text(refused)


async def test_a_hand_edit_round_trip_keeps_pipes_and_trigger_words_with_commas(client: Client, home: Path) -> None:
    await client.call_tool(
        "studio_register",
        {"kind": "model", "action": "add", "name": "Pony V6 XL", "settings": "CFG 7 | clip_skip 2"},
    )
    await client.call_tool(
        "studio_register",
        {"kind": "lora", "action": "add", "name": "greg", "trigger_words": ["by greg, rutkowski", "oil|ink"]},
    )
    studio_md = home / "grimoire" / "studio.md"
    text = studio_md.read_text(encoding="utf-8")
    studio_md.write_text(text.replace(" | 0.6-1 | ", " | 0.5-0.9 | "), encoding="utf-8")  # the artist's one change

    inventory = json.loads(await _resource(client, "ategnatos://studio.json"))

    assert inventory["models"][0]["settings"] == "CFG 7 | clip_skip 2"
    assert inventory["loras"][0]["trigger_words"] == ["by greg, rutkowski", "oil|ink"]
    assert (inventory["loras"][0]["weight_min"], inventory["loras"][0]["weight_max"]) == (0.5, 0.9)


async def test_notices_of_a_change_made_by_another_tool_wait_for_the_next_studio_answer(
    app: Wiring, client: Client, home: Path
) -> None:
    from ategnatos_mcp.studio import STUDIO_DOCUMENT, StudioInventory

    (home / "grimoire" / "studio.md").write_bytes((GRIMOIRE / "seed_studio.md").read_bytes())
    async with app.store.update(STUDIO_DOCUMENT, StudioInventory) as upd:  # as the GPU tools' sync does
        upd.doc.instances = []

    answer = await client.call_tool("studio_register", {"kind": "workflow", "action": "add", "name": "inkwash"})
    assert answer.structured_content["notices"][0] == "Read your own studio.md: 2 entries taken into the grimoire."
    again = await client.call_tool("studio_register", {"kind": "workflow", "action": "remove", "name": "inkwash"})
    assert again.structured_content["notices"] == []
