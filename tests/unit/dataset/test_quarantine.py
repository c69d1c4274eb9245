from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ategnatos_mcp.dataset import dataset_fingerprint, quarantine_files, undo_quarantine
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError, StateError

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "quarantine" not in p.parts
    }


def _dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    (root / "5_style").mkdir(parents=True)
    (root / "5_style" / "a.png").write_bytes(b"\x89PNG a" * 100)
    (root / "5_style" / "a.txt").write_text("caption a", encoding="utf-8")
    (root / "5_style" / "b.jpg").write_bytes(b"\xff\xd8 b" * 100)
    (root / "c.webp").write_bytes(b"RIFF c" * 50)
    return root


def test_quarantine_moves_files_with_their_captions_and_undo_restores_exact_bytes(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    before = _digest(root)
    fingerprint = dataset_fingerprint(root)
    moved = quarantine_files(root, {"5_style/a.png": "duplicate of c.webp", "c.webp": "test"}, when=WHEN)
    assert set(moved.moved) == {"5_style/a.png", "5_style/a.txt", "c.webp"}
    assert not (root / "5_style" / "a.png").exists()
    assert (root / "quarantine" / "20260304T050607" / "5_style" / "a.txt").exists()
    manifest = json.loads((root / "quarantine" / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["entries"]) == 3
    assert dataset_fingerprint(root) != fingerprint
    undone = undo_quarantine(root)
    assert len(undone.moved) == 3
    assert _digest(root) == before
    assert dataset_fingerprint(root) == fingerprint
    assert not (root / "quarantine" / "20260304T050607").exists()
    with pytest.raises(NotFoundError):
        undo_quarantine(root)


def test_undo_never_overwrites_a_file_that_came_back(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    quarantine_files(root, {"c.webp": "test"}, when=WHEN)
    (root / "c.webp").write_bytes(b"new work")
    result = undo_quarantine(root)
    assert result.moved == []
    assert "exists again" in result.skipped[0]
    assert (root / "c.webp").read_bytes() == b"new work"
    assert (root / "quarantine" / "20260304T050607" / "c.webp").exists()


def test_paths_outside_the_dataset_are_refused(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    (tmp_path / "outside.png").write_bytes(b"x")
    with pytest.raises(InvalidRequestError):
        quarantine_files(root, {"../outside.png": "no"}, when=WHEN)
    assert (tmp_path / "outside.png").exists()


def test_two_batches_undo_latest_first(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    first = quarantine_files(root, {"c.webp": "one"}, when=WHEN)
    second = quarantine_files(root, {"5_style/b.jpg": "two"}, when=WHEN)
    assert first.batch != second.batch
    assert undo_quarantine(root).batch == second.batch
    assert (root / "5_style" / "b.jpg").exists() and not (root / "c.webp").exists()
    assert undo_quarantine(root, batch=first.batch).moved == ["c.webp"]


def _moves_dataset(tmp_path: Path) -> Path:
    """Four images, three with captions, in two folders."""
    root = tmp_path / "ds"
    (root / "10_style").mkdir(parents=True)
    for i, name in enumerate(["a.png", "b.jpg", "10_style/c.png", "10_style/d.webp"]):
        (root / name).write_bytes(f"image {i} ".encode() * (100 + i))
        if i < 3:
            (root / name).with_suffix(".txt").write_text(f"caption {i}", encoding="utf-8")
    return root


def _files_in_quarantine(root: Path) -> list[str]:
    folder = root / "quarantine"
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")


def test_a_link_leaving_the_project_is_left_alone_and_the_rest_moves_with_a_manifest(tmp_path: Path) -> None:
    # Issue 16: a symlinked duplicate made quarantine stop part-way, with moved files and no manifest.
    root = _moves_dataset(tmp_path)
    outside = tmp_path / "elsewhere" / "shared.png"
    outside.parent.mkdir()
    outside.write_bytes(b"someone else's picture")
    os.symlink(outside, root / "b-link.png")
    before = _digest(root)
    result = quarantine_files(root, {"a.png": "x", "b-link.png": "x", "b.jpg": "x"}, when=WHEN, roots=[root])
    assert result.moved == ["a.png", "a.txt", "b.jpg", "b.txt"]
    assert result.skipped == ["b-link.png: a link to a file outside the project; left alone"]
    assert (root / "b-link.png").is_symlink() and outside.read_bytes() == b"someone else's picture"
    manifest = json.loads((root / "quarantine" / "manifest.json").read_text(encoding="utf-8"))
    assert {e["original"] for e in manifest["entries"]} == {"a.png", "a.txt", "b.jpg", "b.txt"}
    undo_quarantine(root)
    assert _digest(root) == before


def test_a_move_that_fails_part_way_puts_back_every_file_moved_before_it(tmp_path: Path) -> None:
    # A real failure: the quarantine path of the last file is longer than Linux allows (PATH_MAX, 4096 bytes).
    root = _moves_dataset(tmp_path)
    deep, wanted = root / "z", 4080 - len("/e.png")  # 4080 fits; 27 more (quarantine/<batch>/) do not
    while wanted - len(str(deep)) > 201:
        deep = deep / ("d" * 200)
    deep = deep / ("d" * (wanted - len(str(deep)) - 1))
    deep.mkdir(parents=True)
    (deep / "e.png").write_bytes(b"deep image")
    rel = (deep / "e.png").relative_to(root).as_posix()
    assert len(str(root / rel)) < 4096 <= len(str(root / "quarantine" / "20260304T050607" / rel))
    before = _digest(root)
    with pytest.raises(StateError) as caught:
        quarantine_files(root, {"a.png": "x", "b.jpg": "x", rel: "x"}, when=WHEN)
    assert "were put back" in caught.value.message
    assert _digest(root) == before
    assert _files_in_quarantine(root) == []
    assert json.loads((root / "quarantine" / "manifest.json").read_text(encoding="utf-8"))["entries"] == []


CHILD = Path(__file__).with_name("quarantine_child.py")


def _run_until_paused(action: str, root: Path, stop_after: int, files: list[str]) -> str:
    """Run the child until it pauses after ``stop_after`` moves, then SIGKILL it; its last word."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), action, str(root), str(stop_after), *files],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert proc.stdout is not None
    word = proc.stdout.readline().strip()  # "paused", or "finished" when it had fewer moves to make
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return word


@pytest.mark.parametrize("stop_after", [0, 1, 4, 6])
def test_a_quarantine_killed_mid_move_is_undone_byte_for_byte(tmp_path: Path, stop_after: int) -> None:
    root = _moves_dataset(tmp_path)
    before = _digest(root)
    files = ["a.png", "b.jpg", "10_style/c.png", "10_style/d.webp"]
    assert _run_until_paused("quarantine", root, stop_after, files) == "paused"
    assert len(_files_in_quarantine(root)) == stop_after
    if stop_after == 0:
        with pytest.raises(NotFoundError):  # nothing had moved: nothing to undo, and the dataset is whole
            undo_quarantine(root)
    else:
        result = undo_quarantine(root)
        assert len(result.moved) == stop_after and result.skipped == []
    assert _digest(root) == before
    assert _files_in_quarantine(root) == []


def test_an_undo_killed_mid_move_finishes_on_the_next_undo(tmp_path: Path) -> None:
    root = _moves_dataset(tmp_path)
    before = _digest(root)
    quarantine_files(root, {"a.png": "x", "b.jpg": "x", "10_style/c.png": "x"}, when=WHEN)
    assert _run_until_paused("undo", root, 2, []) == "paused"
    result = undo_quarantine(root)
    assert len(result.moved) == 6 and result.skipped == []
    assert _digest(root) == before


def test_single_files_come_back_with_their_captions_and_the_rest_stays(tmp_path: Path) -> None:
    root = _moves_dataset(tmp_path)
    before = _digest(root)
    quarantine_files(root, {"a.png": "x", "b.jpg": "x"}, when=WHEN)
    quarantine_files(root, {"10_style/c.png": "x"}, when=WHEN)
    back = undo_quarantine(root, files=["b.jpg"])
    assert back.moved == ["b.jpg", "b.txt"]
    assert (root / "b.jpg").exists() and not (root / "a.png").exists() and not (root / "10_style/c.png").exists()
    with pytest.raises(NotFoundError):
        undo_quarantine(root, files=["b.jpg"])  # already back
    undo_quarantine(root, files=["./a.png", "10_style/c.png"])  # across batches
    assert _digest(root) == before
