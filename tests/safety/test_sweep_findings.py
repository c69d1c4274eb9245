"""What the safety sweep found, one test each (every one failed before its fix), through the real MCP client.

1. A page kept by hand with the markdown version (an asset's iterations.md, a library page, a training record) was
   overwritten by the first render, with no copy.
2. A rewrite gave an artist's file 0600 (studio.md, 0664, could no longer be read by the group that shares the
   project), and a kept copy of a private 0600 eye.md came out readable by everyone (0644).
3. train_plan overwrote a config the artist already had in workspace/configs/<name>/ (the markdown version wrote
   its configs there).
4. dataset_structure, run twice in one second after a caption changed twice, moved the older replaced caption
   aside onto the same name as the newer one: the only copy of that caption was lost.
"""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp import Client

from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.wiring import Wiring
from tests.conftest import FIXTURES


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _kept(path: Path, label: str) -> list[Path]:
    return sorted(path.parent.glob(f"{path.stem}.{label}-*{path.suffix}"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _calls(settings: Settings, app: Wiring, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
        results = [await client.call_tool(tool, args) for tool, args in calls]
    for (tool, _), result in zip(calls, results, strict=True):
        assert not result.is_error, (tool, _text(result))
    return results


async def test_a_hand_kept_iterations_page_is_kept_before_the_first_log_on_that_asset(
    settings: Settings, app: Wiring, home: Path
) -> None:
    page = home / "grimoire" / "projects" / "launch" / "assets" / "mascot" / "iterations.md"
    page.parent.mkdir(parents=True)
    page.write_text("# Mascot\n\n## v1\n- Prompt: fox mascot, flat colours\n- Feedback: too busy\n", encoding="utf-8")
    before = page.read_bytes()
    [built] = await _calls(
        settings,
        app,
        ("art_prompt", {"intent": "fox mascot", "family": "sdxl", "project": "launch", "asset": "mascot"}),
    )
    [copy] = _kept(page, "backup")
    assert copy.read_bytes() == before and page.read_bytes() != before
    assert f"your copy is kept as {copy.name}" in _text(built)


async def test_a_hand_kept_library_page_is_kept_before_a_save_under_its_name(
    settings: Settings, app: Wiring, home: Path
) -> None:
    page = home / "grimoire" / "library" / "sdxl" / "warm-mascot.md"
    page.parent.mkdir(parents=True)
    page.write_bytes(b"# warm mascot\n\nPositive: fox mascot, warm palette\nNotes: CFG 7 on Pony\n")
    before = page.read_bytes()
    [saved] = await _calls(
        settings, app, ("art_library", {"action": "save", "name": "warm-mascot", "family": "sdxl", "positive": "fox"})
    )
    [copy] = _kept(page, "backup")
    assert copy.read_bytes() == before
    assert copy.name in _text(saved)


async def test_a_hand_kept_training_record_is_kept_before_train_plan_writes_it(
    settings: Settings, app: Wiring, home: Path
) -> None:
    from PIL import Image

    images = home / "workspace" / "datasets" / "ink"
    images.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (512, 512), (i * 40, 90, 120)).save(images / f"ink{i}.png")
    record = home / "grimoire" / "training" / "ink" / "intent.md"
    record.parent.mkdir(parents=True)
    record.write_text("# Intent\n\nMy ink paintings. Keep the paper texture!\n", encoding="utf-8")
    before = record.read_bytes()
    plan = {"name": "ink", "dataset_path": "ink", "family": "SDXL", "base_model": "/m.safetensors", "gpu_vram_gb": 24}
    [planned] = await _calls(settings, app, ("train_plan", plan))
    [copy] = _kept(record, "backup")
    assert copy.read_bytes() == before and record.read_bytes() != before
    assert copy.name in _text(planned)


async def test_rewrites_and_kept_copies_keep_the_artists_permissions(
    settings: Settings, app: Wiring, home: Path
) -> None:
    eye, studio = home / "grimoire" / "eye.md", home / "grimoire" / "studio.md"
    eye.write_bytes((FIXTURES / "grimoire" / "seed_eye.md").read_bytes())
    studio.write_bytes((FIXTURES / "grimoire" / "seed_studio.md").read_bytes())
    os.chmod(eye, 0o600)  # private
    os.chmod(studio, 0o664)  # shared with the group
    await _calls(
        settings,
        app,
        ("eye_update", {"action": "add", "category": "style", "text": "gouache"}),
        ("studio_register", {"action": "add", "kind": "lora", "name": "inkwash", "trigger_words": ["inkw"]}),
    )
    assert [_mode(p) for p in (eye, *_kept(eye, "backup"))] == [0o600, 0o600]
    assert [_mode(p) for p in (studio, *_kept(studio, "backup"))] == [0o664, 0o664]
    assert "gouache" in eye.read_text(encoding="utf-8") and "inkwash" in studio.read_text(encoding="utf-8")


async def test_train_plan_keeps_a_config_the_artist_already_had_in_its_folder(
    settings: Settings, app: Wiring, home: Path
) -> None:
    from PIL import Image

    images = home / "workspace" / "datasets" / "ink"
    images.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (512, 512), (i * 40, 90, 120)).save(images / f"ink{i}.png")
    own = home / "workspace" / "configs" / "ink" / "ink.toml"
    own.parent.mkdir(parents=True)
    own.write_text("# tuned by hand over three weekends\nlearning_rate = 0.00008\nnetwork_dim = 12\n", "utf-8")
    before = own.read_bytes()
    plan = {"name": "ink", "dataset_path": "ink", "family": "SDXL", "base_model": "/m.safetensors", "gpu_vram_gb": 24}
    [planned] = await _calls(settings, app, ("train_plan", plan))
    [copy] = _kept(own, "backup")
    assert copy.read_bytes() == before and own.read_bytes() != before
    assert copy.name in _text(planned)
    replanned = await _calls(settings, app, ("train_plan", {**plan, "overrides": {"network_rank": 8}}))
    assert _kept(own, "backup") == [copy], _text(replanned[0])  # our own plan's files are simply revised


async def test_captions_replaced_twice_within_a_second_are_both_kept_aside_by_dataset_structure(
    settings: Settings, app: Wiring, home: Path
) -> None:
    from PIL import Image

    from ategnatos_mcp.state import write_text_atomic

    folder = home / "workspace" / "datasets" / "hills"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (64, 64), (i * 60, 80, 100)).save(folder / f"hill{i}.png")
        (folder / f"hill{i}.txt").write_text(f"misty hills {i}", encoding="utf-8")
    layout = {"path": "hills", "name": "hills", "repeats": 2}
    captions: list[bytes] = []
    app.clock = lambda: datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)  # every call within the same second
    async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
        assert not (await client.call_tool("dataset_structure", layout)).is_error
        for version in ("first rewrite", "second rewrite"):
            captions.append((folder / "hill1.txt").read_bytes())
            write_text_atomic(folder / "hill1.txt", f"misty hills, {version}")  # a new file, as editors save
            again = await client.call_tool("dataset_structure", layout)
            assert not again.is_error, _text(again)
    aside = home / "workspace" / "datasets" / "hills-kohya" / "quarantine"
    kept = sorted(_sha(p.read_bytes()) for p in aside.rglob("*.txt"))
    assert kept == sorted(_sha(c) for c in captions)  # both earlier captions, whatever the clock said
