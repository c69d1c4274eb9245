"""The prompt library on a real grimoire: save, get, search by words and tags."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ategnatos_mcp.art import LibraryEntry
from ategnatos_mcp.art.library import PromptLibrary
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.state import GrimoireStore

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def _entry(name: str, family: str = "sdxl", **kw) -> LibraryEntry:
    return LibraryEntry(name=name, family=family, positive=kw.pop("positive", "fox"), saved_at=NOW, **kw)


@pytest.fixture
def library(tmp_path: Path) -> PromptLibrary:
    return PromptLibrary(GrimoireStore(tmp_path / "grimoire"), lambda: NOW)


async def test_saved_prompts_are_rendered_under_their_family(library: PromptLibrary) -> None:
    saved, notices = await library.save(_entry("warm mascot", positive="fox mascot, warm light", tags=["mascot"]))
    path = library.root / "sdxl" / "warm mascot.md"
    text = path.read_text(encoding="utf-8")
    assert "# warm mascot" in text and "fox mascot, warm light" in text and "Tags: mascot" in text
    assert notices == [] and saved.view_hash
    assert (await library.get("sdxl", "WARM MASCOT")).positive == "fox mascot, warm light"


async def test_a_name_is_not_overwritten_unless_asked(library: PromptLibrary) -> None:
    await library.save(_entry("hero", positive="first"))
    with pytest.raises(InvalidRequestError):
        await library.save(_entry("hero", positive="second"))
    await library.save(_entry("hero", positive="second"), overwrite=True)
    assert (await library.get("sdxl", "hero")).positive == "second"
    assert "second" in (library.root / "sdxl" / "hero.md").read_text(encoding="utf-8")


async def test_search_ranks_by_words_and_requires_every_tag(library: PromptLibrary) -> None:
    await library.save(_entry("warm mascot", positive="fox mascot, golden light", tags=["mascot", "warm"]))
    await library.save(_entry("city night", positive="neon street, rain, fox", tags=["scene"]))
    await library.save(_entry("fox portrait", family="pony", positive="fox, portrait", tags=["mascot"]))
    ranked = await library.search("fox mascot")
    # Words in the name or tags count double: "fox portrait" (tag mascot) has both words there.
    assert [(m.name, m.score) for m in ranked] == [("fox portrait", 1.0), ("warm mascot", 0.75), ("city night", 0.25)]
    assert [m.name for m in await library.search("fox", tags=["mascot"], family="sdxl")] == ["warm mascot"]
    assert [m.name for m in await library.search("", tags=["Mascot"])] == ["fox portrait", "warm mascot"]
    assert await library.search("submarine") == []


async def test_unknown_entries_name_what_exists(library: PromptLibrary) -> None:
    await library.save(_entry("hero"))
    with pytest.raises(NotFoundError) as caught:
        await library.get("sdxl", "villain")
    assert "hero" in caught.value.hint


async def test_library_names_cannot_escape_the_folder(library: PromptLibrary) -> None:
    with pytest.raises(InvalidRequestError):
        await library.save(_entry("../../evil"))


async def test_replacing_an_entry_keeps_a_hand_edited_page_aside(library: PromptLibrary) -> None:
    await library.save(_entry("hero", positive="first"))
    page = library.root / "sdxl" / "hero.md"
    page.write_text("my notes about hero\n", encoding="utf-8")
    _, notices = await library.save(_entry("hero", positive="second"), overwrite=True)
    kept = [p for p in page.parent.iterdir() if p.name.startswith("hero.edited-")]
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8") == "my notes about hero\n"
    assert "second" in page.read_text(encoding="utf-8")
    assert len(notices) == 1 and kept[0].name in notices[0]
