"""The iteration log on real files: versions, exact revert, outcomes, views and hand edits."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from inline_snapshot import snapshot

from ategnatos_mcp.art import ArtAsset, FamilyCatalog, LoraUse, build_prompt
from ategnatos_mcp.art.iterations import IterationLog, add_version, get_version, record_outcome, revert_to
from ategnatos_mcp.art.render import render_iterations
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError

NOW = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)


def _doc_with_two_versions(catalog: FamilyCatalog) -> ArtAsset:
    doc = ArtAsset(project="launch", asset="mascot")
    pony = catalog.get("pony")
    first = build_prompt(pony, "fox mascot, (big eyes:1.2)", aspect="16:9", seed=1234)
    first.loras = [LoraUse(name="inkwash", weight=0.7, trigger_words=["inkwash style"])]
    add_version(doc, first, now=NOW, origin="built", intent="fox mascot")
    second = build_prompt(pony, "fox mascot, sitting", seed=99)
    add_version(doc, second, now=NOW, origin="adjusted", based_on=1)
    return doc


def test_revert_reproduces_version_n_exactly(catalog: FamilyCatalog) -> None:
    doc = _doc_with_two_versions(catalog)
    record_outcome(doc, 1, outputs=["outputs/a.png"], feedback="too dark")
    copy = revert_to(doc, 1, now=NOW)
    original = get_version(doc, 1)
    assert copy.version == 3 and copy.based_on == 1 and copy.origin == "reverted"
    same = ("family", "positive", "negative", "positive_terms", "negative_terms", "settings", "loras", "intent")
    assert copy.model_dump(include=set(same)) == original.model_dump(include=set(same))
    assert copy.settings.seed == 1234
    assert copy.outputs == [] and copy.feedback == ""
    assert original.outputs == ["outputs/a.png"]


def test_versions_are_numbered_and_looked_up(catalog: FamilyCatalog) -> None:
    doc = _doc_with_two_versions(catalog)
    assert get_version(doc, None).version == 2
    with pytest.raises(NotFoundError) as caught:
        get_version(doc, 7)
    assert "1, 2" in caught.value.hint


def test_outcomes_accumulate_on_a_version(catalog: FamilyCatalog) -> None:
    doc = _doc_with_two_versions(catalog)
    record_outcome(doc, 2, seed=5, outputs=["a.png"], feedback="too busy")
    it = record_outcome(doc, 2, outputs=["a.png", "b.png"], feedback="warmer")
    assert it.settings.seed == 5
    assert it.outputs == ["a.png", "b.png"]
    assert it.feedback == "too busy / warmer"


def test_iterations_md_renders_every_attempt(catalog: FamilyCatalog) -> None:
    doc = _doc_with_two_versions(catalog)
    record_outcome(doc, 1, outputs=["outputs/v1.png"], feedback="too dark")
    assert render_iterations(doc) == snapshot("""\
<!-- Rendered by Ategnatos from .state/asset.json; change it through the art tools, not by hand. -->

# mascot — iterations

Project: launch · 2 version(s)

## Version 1

2026-05-01 12:30 UTC · pony · built from the request

Intent: fox mascot

Prompt:
```text
score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, rating_safe, fox mascot, (big eyes:1.2)
```

Negative:
```text
lowres, watermark, signature, text, rating_explicit, rating_questionable
```

- Sampler: euler_ancestral / normal
- Steps: 25
- CFG: 7
- Clip skip: 2
- Size: 1344x768
- Seed: 1234
- LoRA: inkwash at 0.7 (triggers: inkwash style)

Outputs:
- outputs/v1.png

Feedback: too dark

## Version 2

2026-05-01 12:30 UTC · pony · adjusted from version 1

Prompt:
```text
score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, rating_safe, fox mascot, sitting
```

Negative:
```text
lowres, watermark, signature, text, rating_explicit, rating_questionable
```

- Sampler: euler_ancestral / normal
- Steps: 25
- CFG: 7
- Clip skip: 2
- Size: 1024x1024
- Seed: 99

Feedback: (none yet)
""")


async def test_log_writes_json_and_three_views_in_the_asset_folder(tmp_path: Path, catalog: FamilyCatalog) -> None:
    log = IterationLog(tmp_path / "grimoire", lambda: NOW)
    notices: list[str] = []
    async with log.update("launch page", "mascot", notices) as doc:
        add_version(doc, build_prompt(catalog.get("sdxl"), "fox"), now=NOW, origin="built")
    folder = tmp_path / "grimoire" / "projects" / "launch page" / "assets" / "mascot"
    assert {p.name for p in folder.iterdir()} == {".state", "spec.md", "iterations.md", "approved.md"}
    assert (folder / ".state" / "asset.json").is_file()
    reread = await log.read("launch page", "mascot")
    assert reread.project == "launch page" and [it.version for it in reread.iterations] == [1]
    assert notices == []


async def test_a_hand_edited_view_is_kept_aside_not_lost(tmp_path: Path, catalog: FamilyCatalog) -> None:
    log = IterationLog(tmp_path / "grimoire", lambda: NOW)
    async with log.update("p", "a", []) as doc:
        add_version(doc, build_prompt(catalog.get("sdxl"), "fox"), now=NOW, origin="built")
    view = log.folder("p", "a") / "iterations.md"
    view.write_text("my own notes\n", encoding="utf-8")
    notices: list[str] = []
    async with log.update("p", "a", notices) as doc:
        record_outcome(doc, 1, feedback="lovely")
    kept = log.folder("p", "a") / "iterations.edited-20260501-123000.md"
    assert kept.read_text(encoding="utf-8") == "my own notes\n"
    assert "Feedback: lovely" in view.read_text(encoding="utf-8")
    assert len(notices) == 1 and kept.name in notices[0]


async def test_a_failed_change_writes_nothing(tmp_path: Path, catalog: FamilyCatalog) -> None:
    log = IterationLog(tmp_path / "grimoire", lambda: NOW)
    with pytest.raises(NotFoundError):
        async with log.update("p", "a", []) as doc:
            get_version(doc, 1)
    assert not (log.folder("p", "a") / "iterations.md").exists()
    with pytest.raises(NotFoundError):
        await log.read("p", "a")


@pytest.mark.parametrize(("project", "asset"), [("../escape", "a"), ("p", "a/b"), (".hidden", "a"), ("p", "")])
async def test_project_and_asset_names_cannot_leave_the_grimoire(tmp_path: Path, project: str, asset: str) -> None:
    log = IterationLog(tmp_path / "grimoire", lambda: NOW)
    with pytest.raises(InvalidRequestError):
        log.folder(project, asset)


async def test_concurrent_attempts_on_one_asset_get_distinct_versions(tmp_path: Path, catalog: FamilyCatalog) -> None:
    log = IterationLog(tmp_path / "grimoire", lambda: NOW)
    draft = build_prompt(catalog.get("sdxl"), "fox")

    async def attempt() -> None:
        async with log.update("p", "a", []) as doc:
            add_version(doc, draft, now=NOW, origin="built")

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(attempt)
    doc = await log.read("p", "a")
    assert [it.version for it in doc.iterations] == list(range(1, 9))
    assert (log.folder("p", "a") / "iterations.md").read_text(encoding="utf-8").count("## Version") == 8
