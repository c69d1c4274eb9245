"""A kohya layout made by two conversations at once, or by a copy a kill cut short: whole files, nothing lost.

The other conversation is played by wrapping ``os.link`` in this test (it places the same file a moment before
this one does); the kill by leaving a half-written temp copy where the layout's copy would be made.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.dataset import Concept, build_structure
from ategnatos_mcp.dataset.structure import unfinished_layout

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _flat(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        (root / f"img{i}.png").write_bytes(f"image {i}".encode() * 100)
        (root / f"img{i}.txt").write_text(f"caption {i}", encoding="utf-8")
    return root


def test_a_file_the_other_conversation_placed_a_moment_before_counts_as_placed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    style = _flat(tmp_path / "style", 4)
    real_link: Callable[..., Any] = os.link
    raced: list[str] = []

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(dst).name == "img2.png" and not raced:
            raced.append(str(dst))
            real_link(src, dst)  # the other server's layout of the same folder got there first
        real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", link)
    result = build_structure(tmp_path / "out", [Concept(style, "mystyle", repeats=2)], when=WHEN)
    assert raced and result.linked == 7 and result.unchanged == 1
    layout = tmp_path / "out" / "2_mystyle"
    assert sorted(p.name for p in layout.iterdir()) == sorted(p.name for p in style.iterdir())
    assert unfinished_layout(tmp_path / "out") is None


def test_a_copied_layout_is_made_of_whole_files_and_a_cut_short_copy_is_cleared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    style = _flat(tmp_path / "style", 3)
    layout = tmp_path / "out" / "1_mystyle"
    layout.mkdir(parents=True)
    cut = layout / ".img0.png.k2j3h4g5.ategnatos.tmp"  # a copy a kill cut short
    cut.write_bytes(b"image 0")
    real_link: Callable[..., Any] = os.link

    def no_hard_links(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(src).parent == style:  # the sources are on another disk: hard links are impossible
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", no_hard_links)
    result = build_structure(tmp_path / "out", [Concept(style, "mystyle", repeats=1)], when=WHEN)
    assert result.method == "copy" and result.copied == 6
    assert sorted(p.name for p in layout.iterdir()) == sorted(p.name for p in style.iterdir())
    for source in style.iterdir():
        assert (layout / source.name).read_bytes() == source.read_bytes()
    assert not cut.exists()
