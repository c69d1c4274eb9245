"""Kept copies never replace each other; the start-up sweep removes only our own abandoned temp files."""

from __future__ import annotations

import fcntl
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from ategnatos_mcp.state.atomic import keep_copy, preserve, remove_leftover_temp_files, write_text_atomic

NOW = datetime(2026, 12, 5, 1, 16, tzinfo=UTC)
HOUR = 3600.0


def test_copies_kept_in_the_same_second_never_replace_each_other(tmp_path: Path) -> None:
    view = tmp_path / "eye.md"
    write_text_atomic(view, "first bad edit")
    first = preserve(view, "edited", NOW)
    write_text_atomic(view, "second bad edit")
    second = preserve(view, "edited", NOW)
    third = keep_copy(view, b"third", "edited", NOW)

    assert [p.name for p in (first, second, third)] == [
        "eye.edited-20261205-011600.md",
        "eye.edited-20261205-011600-2.md",
        "eye.edited-20261205-011600-3.md",
    ]
    assert [p.read_bytes() for p in (first, second, third)] == [b"first bad edit", b"second bad edit", b"third"]


def _aged(path: Path, text: str = "half a document", age: float = 2 * HOUR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_only_our_old_unlocked_temp_files_are_removed(tmp_path: Path) -> None:
    grimoire = tmp_path / "grimoire"
    ours_old = _aged(grimoire / ".state" / ".eye.json.k2j3h4g5.ategnatos.tmp")
    ours_nested = _aged(grimoire / "training" / "ink" / ".progress.md.a_b0c9d8.ategnatos.tmp")
    before_marker_in_state = _aged(grimoire / ".state" / ".studio.json.x1y2z3w4.tmp")
    kept = [
        _aged(grimoire / ".state" / ".eye.json.q1w2e3r4.ategnatos.tmp", age=60),  # recent: may be a live write
        _aged(grimoire / "notes.tmp"),  # the artist's
        _aged(grimoire / ".eye.md.swp"),  # an editor's
        _aged(grimoire / ".eye.md.abcdefgh.tmp"),  # looks like our old naming, but outside .state: not ours
        _aged(grimoire / "projects" / "eye.json.k2j3h4g5.ategnatos.tmp"),  # no leading dot: not our naming
    ]
    locked = _aged(grimoire / ".state" / ".gpu.json.zzzzzzzz.ategnatos.tmp")
    outside = _aged(tmp_path / "elsewhere" / ".eye.json.k2j3h4g5.ategnatos.tmp")
    (grimoire / "linked").symlink_to(outside.parent)  # a link out of the grimoire is not followed

    fd = os.open(locked, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a writer in another server process holds it
        removed = remove_leftover_temp_files(grimoire, older_than_seconds=HOUR)
    finally:
        os.close(fd)

    assert sorted(removed) == sorted([ours_old, ours_nested, before_marker_in_state])
    assert not any(p.exists() for p in removed)
    assert all(p.exists() for p in [*kept, locked, outside])


def test_art_and_training_views_keep_two_hand_edits_made_in_one_second(tmp_path: Path) -> None:
    from ategnatos_mcp.state import write_rendered
    from ategnatos_mcp.training.records import write_record

    page = tmp_path / "iterations.md"
    last = write_rendered(page, "rendered 1\n", None, NOW).hash
    page.write_text("artist's first edit\n", encoding="utf-8")
    last, first, _ = write_rendered(page, "rendered 2\n", last, NOW)
    page.write_text("artist's second edit\n", encoding="utf-8")
    second = write_rendered(page, "rendered 3\n", last, NOW).kept
    kept = sorted(tmp_path.glob("iterations.edited-*.md"), key=lambda p: (len(p.name), p.name))
    assert [p.read_text(encoding="utf-8") for p in kept] == ["artist's first edit\n", "artist's second edit\n"]
    assert first is not None and second is not None and kept == [first, second]

    hashes: dict[str, str] = {}
    write_record(tmp_path, "intent.md", "v1\n", hashes)
    for n in range(2):
        (tmp_path / "intent.md").write_text(f"edit {n}\n", encoding="utf-8")
        write_record(tmp_path, "intent.md", f"v{n + 2}\n", hashes)
    assert len(list(tmp_path.glob("intent.edited-*.md"))) == 2
