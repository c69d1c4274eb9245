from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ategnatos_mcp.dataset import dataset_fingerprint, quarantine_files, undo_quarantine
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError

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
