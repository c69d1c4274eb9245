"""The store and a view: reads never write, suspicious edits are held back, notices are given once."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.eye import EYE_DOCUMENT, EYE_VIEW, EyeProfile, apply_change
from ategnatos_mcp.state import GrimoireStore
from tests.conftest import FIXTURES

NOW = datetime(2026, 12, 5, 1, 16, tzinfo=UTC)


def _store(tmp_path: Path) -> GrimoireStore:
    store = GrimoireStore(tmp_path / "grimoire")
    store.register_view(EYE_DOCUMENT, EYE_VIEW)
    return store


async def _add(store: GrimoireStore, *texts: str) -> None:
    for text in texts:
        async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
            apply_change(upd.doc, "add", now=NOW, category="style", text=text)


def _files(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _eye_md(store: GrimoireStore) -> Path:
    return store.root / "eye.md"


def _without(text: str, *entries: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if not any(f"- {e} [" in line for e in entries))


async def test_reads_never_write_even_when_the_view_was_cut_to_its_title(tmp_path: Path) -> None:
    store = _store(tmp_path)
    await _add(store, *(f"tone {n}" for n in range(6)))
    _eye_md(store).write_text("# Taste Profile\n", encoding="utf-8")
    before = _files(store.root)

    doc = await store.read(EYE_DOCUMENT, EyeProfile)
    doc2, notices = await store.read_with_notices(EYE_DOCUMENT, EyeProfile)

    assert len(doc.entries) == len(doc2.entries) == 6
    assert notices[0].startswith("eye.md lost every entry at once.")
    assert "nothing was removed (tone 0, tone 1, tone 2, tone 3, tone 4, tone 5)" in notices[0]
    assert _files(store.root) == before


async def test_a_normal_hand_edit_shows_on_read_and_is_saved_by_the_next_write(tmp_path: Path) -> None:
    store = _store(tmp_path)
    await _add(store, "ink outlines", "gold leaf")
    text = _without(_eye_md(store).read_text(encoding="utf-8"), "gold leaf")
    edited = text.replace("## Color\n- (preferences accumulate here)", "## Color\n- teal shadows")
    _eye_md(store).write_text(edited, encoding="utf-8")
    before = _files(store.root)

    doc, notices = await store.read_with_notices(EYE_DOCUMENT, EyeProfile)
    assert sorted(e.text for e in doc.entries) == ["ink outlines", "teal shadows"]
    assert notices == ["Imported your hand edits of eye.md: 1 added or changed, 1 removed (gold leaf)."]
    assert _files(store.root) == before
    assert (await store.read_with_notices(EYE_DOCUMENT, EyeProfile))[1] == []  # said once

    async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
        assert upd.notices == []  # already said by the read
    saved = json.loads((store.state_dir / "eye.json").read_text(encoding="utf-8"))
    assert sorted(e["text"] for e in saved["entries"]) == ["ink outlines", "teal shadows"]


@pytest.mark.parametrize(
    ("entries", "removed", "held"),
    [
        (1, 1, True),  # the only entry gone: the view is empty, as a truncated file is
        (4, 3, False),  # three at once is always taken as meant
        (6, 4, True),  # four of six: most of the profile
        (8, 4, False),  # exactly half is not most
        (10, 4, False),
        (10, 6, True),
    ],
)
async def test_an_edit_that_removes_most_entries_at_once_is_held_back(
    tmp_path: Path, entries: int, removed: int, held: bool
) -> None:
    store = _store(tmp_path)
    texts = [f"tone {n}" for n in range(entries)]
    await _add(store, *texts)
    edited = _without(_eye_md(store).read_text(encoding="utf-8"), *texts[:removed])
    _eye_md(store).write_text(edited, encoding="utf-8")

    async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
        notices = list(upd.notices)
    doc = await store.read(EYE_DOCUMENT, EyeProfile)

    copies = sorted(store.root.glob("eye.edited-*.md"))
    if held:
        assert len(doc.entries) == entries
        assert [c.read_text(encoding="utf-8") for c in copies] == [edited]
        assert f"the file as it was is kept as {copies[0].name}" in notices[1]
        assert all(f"- {t} [" in _eye_md(store).read_text(encoding="utf-8") for t in texts)
    else:
        assert [e.text for e in doc.entries] == texts[removed:]
        assert copies == []


async def test_a_held_edit_is_applied_only_when_accepted_and_keeps_what_came_after(tmp_path: Path) -> None:
    store = _store(tmp_path)
    await _add(store, *(f"tone {n}" for n in range(6)))
    _eye_md(store).write_text("# Taste Profile\n", encoding="utf-8")
    await _add(store, "added after the mishap")
    assert len((await store.read(EYE_DOCUMENT, EyeProfile)).entries) == 7

    doc, notices = await store.accept_held_edit(EYE_DOCUMENT, EyeProfile)

    assert [e.text for e in doc.entries] == ["added after the mishap"]
    assert notices[-1].startswith("Applied your edit of eye.md kept as eye.edited-")
    assert notices[-1].endswith(": 6 entries removed, 0 added or changed.")
    assert [e.text for e in (await store.read(EYE_DOCUMENT, EyeProfile)).entries] == ["added after the mishap"]
    with pytest.raises(InvalidRequestError) as again:
        await store.accept_held_edit(EYE_DOCUMENT, EyeProfile)
    assert "No hand edit is waiting" in again.value.message


async def test_start_renders_a_stale_view_again(tmp_path: Path) -> None:
    store = _store(tmp_path)
    await _add(store, "ink outlines")
    stale = _eye_md(store).read_text(encoding="utf-8")
    await _add(store, "gold leaf")
    _eye_md(store).write_text(stale, encoding="utf-8")  # as if the render after "gold leaf" was lost
    record = json.loads((store.state_dir / "eye.view.json").read_text(encoding="utf-8"))
    (store.state_dir / "eye.view.json").write_text(json.dumps({"revision": 1, "text": stale}), encoding="utf-8")
    assert record["revision"] == 2

    fresh = _store(tmp_path)
    await fresh.start()

    assert "- gold leaf [confirmed: 1 session]" in _eye_md(store).read_text(encoding="utf-8")
    assert json.loads((store.state_dir / "eye.json").read_text(encoding="utf-8"))["revision"] == 2  # no new write
    assert (await fresh.read_with_notices(EYE_DOCUMENT, EyeProfile))[1] == []  # nothing to say: nothing was edited


async def test_start_imports_the_artists_own_eye_md_and_says_so_in_the_next_answer_only(tmp_path: Path) -> None:
    store = _store(tmp_path)
    seed = (FIXTURES / "grimoire" / "seed_eye.md").read_bytes()
    store.root.mkdir(parents=True)
    _eye_md(store).write_bytes(seed)

    await store.start()

    backups = list(store.root.glob("eye.backup-*.md"))
    assert [b.read_bytes() for b in backups] == [seed]
    doc, notices = await store.read_with_notices(EYE_DOCUMENT, EyeProfile)
    assert len(doc.entries) == 8
    assert notices == [
        "Read your own eye.md: 8 entries taken into the grimoire.",
        f"A copy of eye.md as you wrote it is kept as {backups[0].name}.",
    ]
    assert (await store.read_with_notices(EYE_DOCUMENT, EyeProfile))[1] == []
    async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
        assert upd.notices == []


async def test_an_eye_md_dropped_beside_existing_state_without_a_record_only_adds(tmp_path: Path) -> None:
    plain = GrimoireStore(tmp_path / "grimoire")  # wrote state with no view registered: no record of eye.md
    async with plain.update(EYE_DOCUMENT, EyeProfile) as upd:
        apply_change(upd.doc, "add", now=NOW, category="style", text="ink outlines")
    seed = (FIXTURES / "grimoire" / "seed_eye.md").read_text(encoding="utf-8")
    (plain.root / "eye.md").write_text(seed, encoding="utf-8")

    store = _store(tmp_path)
    async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
        notices = list(upd.notices)

    doc = await store.read(EYE_DOCUMENT, EyeProfile)
    assert len(doc.entries) == 9 and doc.entries[0].text == "ink outlines"
    assert notices[0] == "Read your own eye.md: 8 entries taken into the grimoire."
    assert [b.read_text(encoding="utf-8") for b in store.root.glob("eye.backup-*.md")] == [seed]


async def test_a_render_whose_record_was_lost_is_not_taken_for_an_edit(tmp_path: Path) -> None:
    store = _store(tmp_path)
    await _add(store, "ink outlines")
    first_render = _eye_md(store).read_text(encoding="utf-8")
    await _add(store, "gold leaf")
    # A kill after eye.md was rendered but before its record was: the record still holds the older text.
    (store.state_dir / "eye.view.json").write_text(json.dumps({"revision": 1, "text": first_render}), "utf-8")

    assert (await store.read_with_notices(EYE_DOCUMENT, EyeProfile))[1] == []
    await store.start()
    assert json.loads((store.state_dir / "eye.view.json").read_text(encoding="utf-8"))["revision"] == 2
    assert list(store.root.glob("eye.*-*.md")) == []


async def test_a_grimoire_of_the_previous_release_upgrades_without_a_notice_or_a_copy(tmp_path: Path) -> None:
    from ategnatos_mcp.studio import STUDIO_DOCUMENT, STUDIO_VIEW, StudioInventory

    grimoire = tmp_path / "grimoire"
    state = grimoire / ".state"
    state.mkdir(parents=True)
    entry = {"id": "style-ink", "category": "style", "text": "ink", "created_at": NOW.isoformat()}
    entry["updated_at"] = entry["created_at"]
    (state / "eye.json").write_text(json.dumps({"schema_version": 1, "revision": 1, "entries": [entry]}), "utf-8")
    old_eye_md = "# Taste Profile\n\n## Style\n- ink [confirmed: 1 session]\n"
    (grimoire / "eye.md").write_text(old_eye_md, encoding="utf-8")
    (state / "eye.view.sha256").write_text(hashlib.sha256(old_eye_md.encode()).hexdigest() + "\n", "utf-8")
    workflow = {"name": "inkwash", "description": "txt2img", "location": ""}
    studio = {"schema_version": 1, "revision": 1, "workflows": [workflow]}
    (state / "studio.json").write_text(json.dumps(studio), encoding="utf-8")
    old_studio_md = "# Studio\n\n## Workflows\n- **inkwash**: txt2img\n"  # the old bullet form
    (grimoire / "studio.md").write_text(old_studio_md, encoding="utf-8")
    (state / "studio.view.sha256").write_text(hashlib.sha256(old_studio_md.encode()).hexdigest() + "\n", "utf-8")

    store = _store(tmp_path)
    store.register_view(STUDIO_DOCUMENT, STUDIO_VIEW)
    await store.start()

    assert "- ink [confirmed: 1 session]" in _eye_md(store).read_text(encoding="utf-8")
    assert "| inkwash | txt2img |  |" in (grimoire / "studio.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in state.iterdir() if "view" in p.name) == ["eye.view.json", "studio.view.json"]
    assert sorted(p.name for p in grimoire.glob("*.md")) == ["eye.md", "studio.md"]  # no copy was needed
    eye, notices = await store.read_with_notices(EYE_DOCUMENT, EyeProfile)
    inv, studio_notices = await store.read_with_notices(STUDIO_DOCUMENT, StudioInventory)
    assert ([e.text for e in eye.entries], eye.kept_as_written, notices) == (["ink"], [], [])
    assert ([w.name for w in inv.workflows], inv.kept_as_written, studio_notices) == (["inkwash"], [], [])


async def test_a_read_racing_a_writer_sees_at_worst_a_stale_view_never_an_edit(tmp_path: Path) -> None:
    from ategnatos_mcp.state.atomic import write_text_atomic
    from ategnatos_mcp.state.views import examine_view, write_view

    store = _store(tmp_path)
    await _add(store, "ink outlines")
    newer = (await store.read(EYE_DOCUMENT, EyeProfile)).model_copy(deep=True)
    apply_change(newer, "add", now=NOW, category="color", text="teal shadows")
    newer.revision += 1

    def load_while_another_server_writes() -> tuple[EyeProfile, bool]:
        # Another process's whole write (JSON, view, record) lands while this read is under way.
        write_text_atomic(store.state_dir / "eye.json", newer.model_dump_json())
        write_view(EYE_VIEW, store.root, store.state_dir, EYE_DOCUMENT, newer)
        return newer, True

    outcome = examine_view(EYE_VIEW, store.root, store.state_dir, EYE_DOCUMENT, load_while_another_server_writes, NOW)

    assert (outcome.said, outcome.done, outcome.aside, outcome.changed) == ([], [], None, False)
    assert [e.text for e in outcome.doc.entries] == ["ink outlines", "teal shadows"]
