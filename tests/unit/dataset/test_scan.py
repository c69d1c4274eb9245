from __future__ import annotations

import os
from pathlib import Path

import pytest

from ategnatos_mcp.dataset import dataset_fingerprint, scan_dataset
from ategnatos_mcp.dataset.scan import fingerprint_of
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_flat_folder_lists_images_and_captions(tmp_path: Path) -> None:
    _touch(tmp_path / "a.png")
    _touch(tmp_path / "a.txt", b"cap")
    _touch(tmp_path / "b.JPG")
    _touch(tmp_path / "notes.md")
    scan = scan_dataset(tmp_path)
    assert [e.rel for e in scan.images] == ["a.png", "b.JPG"]
    assert [e.rel for e in scan.captions] == ["a.txt"]
    assert scan.layout == "flat"


def test_kohya_folders_are_detected_with_repeats(tmp_path: Path) -> None:
    _touch(tmp_path / "10_style" / "a.png")
    _touch(tmp_path / "2_reg" / "b.png")
    scan = scan_dataset(tmp_path)
    assert scan.layout == "kohya"
    assert scan.concepts == {"10_style": 10, "2_reg": 2}


def test_quarantine_and_hidden_files_are_ignored(tmp_path: Path) -> None:
    _touch(tmp_path / "quarantine" / "x.png")
    _touch(tmp_path / ".hidden.png")
    _touch(tmp_path / "a.png")
    assert [e.rel for e in scan_dataset(tmp_path).images] == ["a.png"]


def test_symlink_loop_does_not_trap_the_walk(tmp_path: Path) -> None:
    _touch(tmp_path / "sub" / "a.png")
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    scan = scan_dataset(tmp_path)
    assert [e.rel for e in scan.images] == ["sub/a.png"]
    assert scan.skipped_links == ["sub/loop"]


def test_missing_folder_and_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        scan_dataset(tmp_path / "nope")
    with pytest.raises(InvalidRequestError):
        scan_dataset(_touch(tmp_path / "a.png"))


def test_fingerprint_changes_when_a_caption_changes_and_not_otherwise(tmp_path: Path) -> None:
    _touch(tmp_path / "a.png")
    cap = _touch(tmp_path / "a.txt", b"one")
    first = dataset_fingerprint(tmp_path)
    assert dataset_fingerprint(tmp_path) == first
    cap.write_bytes(b"two, longer")
    assert dataset_fingerprint(tmp_path) != first


def test_fingerprint_ignores_quarantine(tmp_path: Path) -> None:
    _touch(tmp_path / "a.png")
    first = dataset_fingerprint(tmp_path)
    _touch(tmp_path / "quarantine" / "b.png")
    assert dataset_fingerprint(tmp_path) == first


def test_a_linked_file_leaving_the_project_is_left_out_and_listed(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    dataset = project / "ds"
    _touch(dataset / "a.png")
    _touch(project / "outputs" / "render.png", b"made in the project")
    _touch(elsewhere / "private.png", b"not the project's")
    os.symlink(project / "outputs" / "render.png", dataset / "linked-inside.png")
    os.symlink(elsewhere / "private.png", dataset / "linked-outside.png")
    scan = scan_dataset(dataset, roots=[project])
    assert [e.rel for e in scan.images] == ["a.png", "linked-inside.png"]
    assert [e.rel for e in scan.outside_links] == ["linked-outside.png"]
    # Without the roots every linked file counts (how the training gates walk it); the fingerprint is the same.
    unconfined = scan_dataset(dataset)
    assert [e.rel for e in unconfined.images] == ["a.png", "linked-inside.png", "linked-outside.png"]
    assert dataset_fingerprint(dataset) == fingerprint_of(scan)
