"""Hand-edited views: imported when they parse, kept beside the new render when they don't."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp.types import TextResourceContents


def _text(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def test_hand_edited_eye_md_is_imported(client: Client, home: Path) -> None:
    await client.call_tool("eye_update", {"action": "add", "category": "color", "text": "warm earth tones"})
    eye_md = home / "grimoire" / "eye.md"
    edited = eye_md.read_text(encoding="utf-8").replace(
        "## Composition\n- (preferences accumulate here)",
        "## Composition\n- Generous negative space [confirmed: 3 sessions]\n- AVOID: centered subjects",
    )
    eye_md.write_text(edited.replace("[confirmed: 1 session]", "[confirmed: 4 sessions]", 1), encoding="utf-8")

    query = await client.call_tool("eye_query", {"detail": True})
    entries = {e["text"]: e for e in query.structured_content["entries"]}
    assert entries["warm earth tones"]["confirmations"] == 4
    assert entries["Generous negative space"]["confirmations"] == 3
    assert entries["centered subjects"]["level"] == "avoid"
    assert "centered subjects" in query.structured_content["negative_terms"]
    # The next write keeps the imported entries and re-renders the view.
    result = await client.call_tool("eye_update", {"action": "add", "category": "style", "text": "ink outlines"})
    assert result.structured_content["total_entries"] == 4
    assert "- AVOID: centered subjects [confirmed: 1 session]" in eye_md.read_text(encoding="utf-8")


async def test_unreadable_file_is_kept_beside_and_reported(client: Client, home: Path) -> None:
    await client.call_tool("eye_update", {"action": "add", "category": "color", "text": "warm earth tones"})
    eye_md = home / "grimoire" / "eye.md"
    broken = eye_md.read_bytes().replace(b"warm", b"w\xe4rm")  # saved as Latin-1 by some editor
    eye_md.write_bytes(broken)

    result = await client.call_tool("eye_update", {"action": "add", "category": "style", "text": "ink outlines"})
    assert not result.is_error
    assert any("could not be read (it is not UTF-8 text)" in notice for notice in result.structured_content["notices"])
    kept = list((home / "grimoire").glob("eye.edited-*.md"))
    assert len(kept) == 1
    assert kept[0].read_bytes() == broken
    fresh = eye_md.read_text(encoding="utf-8")
    assert "- warm earth tones [confirmed: 1 session]" in fresh
    assert "- ink outlines [confirmed: 1 session]" in fresh
    # Reported once: the next call sees a clean view.
    again = await client.call_tool("eye_update", {"action": "add", "category": "style", "text": "bold shapes"})
    assert again.structured_content["notices"] == []


async def test_hand_edited_studio_tables_are_imported(client: Client, home: Path) -> None:
    await client.call_tool("studio_register", {"kind": "model", "action": "add", "name": "Pony V6 XL", "base": "SDXL"})
    studio_md = home / "grimoire" / "studio.md"
    text = studio_md.read_text(encoding="utf-8").replace(
        "## LoRAs\n| Name | Trigger | Weight Range | Base | Trained On | Location |\n|---|---|---|---|---|---|",
        "## LoRAs\n| Name | Trigger | Weight Range | Base | Trained On | Location |\n|---|---|---|---|---|---|\n"
        "| inkwash | inkwash style, sumi | 0.5-0.7 | SDXL | my ink paintings | /models/loras/inkwash.safetensors |",
    )
    studio_md.write_text(text, encoding="utf-8")
    inventory = await client.read_resource("ategnatos://studio.json")
    import json

    assert isinstance(inventory.contents[0], TextResourceContents)
    loras = json.loads(inventory.contents[0].text)["loras"]
    assert loras == [
        {
            "name": "inkwash",
            "trigger_words": ["inkwash style", "sumi"],
            "weight_min": 0.5,
            "weight_max": 0.7,
            "base_model": "SDXL",
            "trained_on": "my ink paintings",
            "location": "/models/loras/inkwash.safetensors",
            "other_columns": {},
            "provenance": None,  # only LoRAs trained and kept here have one
        }
    ]


async def test_damaged_state_makes_the_resource_say_so(client: Client, home: Path) -> None:
    from mcp.shared.exceptions import MCPError

    state = home / "grimoire" / ".state"
    state.mkdir(parents=True)
    (state / "studio.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(MCPError) as caught:
        await client.read_resource("ategnatos://studio")
    assert "damaged" in str(caught.value)
