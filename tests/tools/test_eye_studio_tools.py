"""The eye and studio tools through a real MCP client (in-memory transport)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from mcp import Client

from ategnatos_mcp.context import AppContext
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import load_settings
from tests.conftest import FIXTURES

pytestmark = pytest.mark.anyio


def _text(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


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
    assert resource.contents[0].text == eye_md


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


async def test_confirmation_on_a_later_day_raises_the_count(settings, app: AppContext) -> None:
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
    as_json = json.loads((await client.read_resource("ategnatos://studio.json")).contents[0].text)
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
