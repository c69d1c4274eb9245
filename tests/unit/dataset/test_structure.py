from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ategnatos_mcp.dataset import Concept, Protected, build_structure, compute_repeats
from ategnatos_mcp.errors import InvalidRequestError

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _flat(root: Path, n: int, prefix: str = "img") -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        (root / f"{prefix}{i}.png").write_bytes(f"image {i}".encode())
        (root / f"{prefix}{i}.txt").write_text(f"caption {i}", encoding="utf-8")
    (root / "notes.md").write_text("not training data", encoding="utf-8")
    return root


def _state(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_repeats_follow_the_formula() -> None:
    assert compute_repeats(20, target_steps=1500, epochs=10) == 8  # ceil(1500 / 200)
    assert compute_repeats(500, target_steps=1500, epochs=10) == 1
    assert compute_repeats(0, target_steps=1500, epochs=10) == 1


def test_flat_folders_become_kohya_folders_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    style = _flat(tmp_path / "style", 20)
    reg = _flat(tmp_path / "reg", 3, "r")
    out = tmp_path / "out"
    concepts = [Concept(style, "mystyle"), Concept(reg, "reg", repeats=1)]
    first = build_structure(out, concepts, target_steps=1500, epochs=10, when=WHEN)
    assert first.repeats == {"8_mystyle": 8, "1_reg": 1}
    assert first.concepts == {"8_mystyle": 20, "1_reg": 3}
    assert first.linked == 46 and first.method == "hardlink"
    assert os.path.samefile(out / "8_mystyle" / "img0.png", style / "img0.png")
    assert not (out / "8_mystyle" / "notes.md").exists()
    before = _state(out)
    again = build_structure(out, concepts, target_steps=1500, epochs=10, when=WHEN)
    assert (again.linked, again.copied, again.unchanged) == (0, 0, 46)
    assert _state(out) == before


def test_changed_repeats_rename_the_folder_and_a_rewritten_caption_is_updated(tmp_path: Path) -> None:
    style = _flat(tmp_path / "style", 4)
    out = tmp_path / "out"
    build_structure(out, [Concept(style, "s", repeats=3)], target_steps=1, epochs=1, when=WHEN)
    # Replaced the way captions are written (a new file renamed over the old): the hard link is stale now.
    (style / "tmp.txt").write_text("new caption", encoding="utf-8")
    os.replace(style / "tmp.txt", style / "img1.txt")
    result = build_structure(out, [Concept(style, "s", repeats=5)], target_steps=1, epochs=1, when=WHEN)
    assert not (out / "3_s").exists()
    assert (out / "5_s" / "img1.txt").read_text(encoding="utf-8") == "new caption"
    assert (out / "quarantine" / "replaced-20260304T050607" / "5_s" / "img1.txt").read_text(
        encoding="utf-8"
    ) == "caption 1"
    assert any("Renamed 3_s to 5_s" in n for n in result.notes)


def test_kohya_source_and_output_inside_source_are_refused(tmp_path: Path) -> None:
    style = _flat(tmp_path / "style", 2)
    with pytest.raises(InvalidRequestError):
        build_structure(style / "out", [Concept(style, "s")], target_steps=10, epochs=1, when=WHEN)
    kohya = tmp_path / "k"
    (kohya / "3_x").mkdir(parents=True)
    (kohya / "3_x" / "a.png").write_bytes(b"a")
    with pytest.raises(InvalidRequestError):
        build_structure(tmp_path / "o", [Concept(kohya, "s")], target_steps=10, epochs=1, when=WHEN)


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("grimoire", "is the grimoire"),
        ("grimoire/training", "is inside the grimoire"),
        ("workspace", "holds the source folder"),
        ("workspace/outputs", "already holds other things than a kohya layout"),
    ],
)
def test_nonsensical_outputs_are_refused_in_plain_words(tmp_path: Path, where: str, words: str) -> None:
    # Issue 16 (Low 13): output="grimoire" was accepted and filled Ategnatos' records with training images.
    style = _flat(tmp_path / "workspace" / "datasets" / "style", 3)
    (tmp_path / "workspace" / "outputs").mkdir()
    (tmp_path / "workspace" / "outputs" / "render.png").write_bytes(b"a render")
    protected = [Protected(tmp_path / "grimoire", "the grimoire", with_subfolders=True)]
    before = _state(tmp_path)
    with pytest.raises(InvalidRequestError) as caught:
        build_structure(
            tmp_path / where, [Concept(style, "s")], target_steps=10, epochs=1, when=WHEN, protected=protected
        )
    assert words in caught.value.message
    assert _state(tmp_path) == before


def test_linked_files_leaving_the_project_are_not_linked_into_the_layout(tmp_path: Path) -> None:
    project = tmp_path / "project"
    style = _flat(project / "style", 3)
    (tmp_path / "private.png").write_bytes(b"not the project's")
    os.symlink(tmp_path / "private.png", style / "borrowed.png")
    result = build_structure(
        project / "out", [Concept(style, "s", repeats=1)], target_steps=1, epochs=1, when=WHEN, roots=[project]
    )
    assert result.concepts == {"1_s": 3}
    assert not (project / "out" / "1_s" / "borrowed.png").exists()
    assert any("borrowed.png" in note and "outside the project" in note for note in result.notes)
