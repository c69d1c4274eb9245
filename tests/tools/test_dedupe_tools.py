"""dataset_dedupe on one artist's series, and the one path rule, through a real MCP client (in memory)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from PIL import Image

from tests.support.datasets import make_series


@pytest.fixture(scope="session")
def series_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("series-tools")
    truth = make_series(out, paintings=30, copies=12, seed=21, long_side=320)
    return out / "dataset", truth


def _series(home: Path, source: Path, name: str = "series") -> Path:
    folder = home / "workspace" / "datasets" / name
    shutil.copytree(source, folder)
    return folder


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "quarantine" not in p.relative_to(folder).parts
    }


def _pictures(result: Any) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(c.data))) for c in result.content if c.type == "image"]


async def test_each_group_comes_with_a_picture_and_the_text_names_every_group_or_says_how_many_more(
    client: Client, home: Path, series_source: tuple[Path, dict[str, Any]]
) -> None:
    source, truth = series_source
    _series(home, source)
    first = await client.call_tool("dataset_dedupe", {"path": "series", "detail": 5})
    assert not first.is_error, first.content
    data = first.structured_content
    assert data is not None
    planted = {g["original"]: {c["path"] for c in g["copies"]} for g in truth["duplicate_groups"]}
    assert data["exact_groups"] + data["near_groups"] == len(planted) == 12
    assert [g["picture"] for g in data["groups"]] == [1, 2, 3, 4, 5] and data["next_start"] == 5
    pictures = _pictures(first)
    assert len(pictures) == 5 + min(len(data["look_alikes"]), 7) <= 12
    for picture in pictures[:5]:
        assert picture.format == "JPEG" and picture.width > picture.height  # two files side by side
    assert all(len(base64.b64decode(c.data)) <= 40_000 for c in first.content if c.type == "image")
    text = first.content[0].text  # type: ignore[union-attr]
    assert text.startswith(data["summary"]) and "1. keep" not in data["summary"]  # groups: text, and JSON ``groups``
    for n, group in enumerate(data["groups"], start=1):
        assert f"{n}. keep {group['keep']}: " in text and f"[picture {n}]" in text
    assert "...and 7 more group(s): call again with start=5." in text
    last = await client.call_tool("dataset_dedupe", {"path": "series", "detail": 5, "start": 10})
    rest = last.structured_content
    assert rest is not None and rest["next_start"] is None and len(rest["groups"]) == 2
    rest_text = last.content[0].text  # type: ignore[union-attr]
    assert "11. keep " in rest_text and "12. keep " in rest_text and "more group" not in rest_text
    listed = (
        data["groups"]
        + (await client.call_tool("dataset_dedupe", {"path": "series", "detail": 12})).structured_content["groups"]
    )  # type: ignore[index]
    for group in listed:
        files = {f["path"] for f in group["files"]}
        assert group["keep"] in planted and files == {group["keep"], *planted[group["keep"]]}


async def test_quarantine_moves_only_proven_copies_and_undo_brings_back_one_file_or_the_rest(
    client: Client, home: Path, series_source: tuple[Path, dict[str, Any]]
) -> None:
    source, truth = series_source
    folder = _series(home, source)
    before = _digest(folder)
    copies = sorted(c["path"] for g in truth["duplicate_groups"] for c in g["copies"])
    moved = await client.call_tool("dataset_dedupe", {"path": "series", "action": "quarantine"})
    assert not moved.is_error, moved.content
    q = moved.structured_content["quarantine"]  # type: ignore[index]
    assert sorted(q["moved"]) == copies  # every planted copy, no painting of the series
    assert set(_digest(folder)) == set(before) - set(copies)
    assert f"quarantine batch {q['batch']}" in moved.content[0].text  # type: ignore[union-attr]
    one = await client.call_tool("dataset_dedupe", {"path": "series", "action": "undo", "files": [copies[0]]})
    assert one.structured_content["quarantine"]["moved"] == [copies[0]]  # type: ignore[index]
    assert (folder / copies[0]).exists() and not (folder / copies[1]).exists()
    rest = await client.call_tool("dataset_dedupe", {"path": "series", "action": "undo"})
    assert len(rest.structured_content["quarantine"]["moved"]) == len(copies) - 1  # type: ignore[index]
    assert _digest(folder) == before


async def test_files_named_are_set_aside_with_their_captions_and_come_back(
    client: Client, home: Path, series_source: tuple[Path, dict[str, Any]]
) -> None:
    source, truth = series_source
    folder = _series(home, source)
    painting = truth["distinct_look_alikes"][0]["a"]
    (folder / painting).with_suffix(".txt").write_text("a caption the artist wrote", encoding="utf-8")
    before = _digest(folder)
    aside = await client.call_tool("dataset_dedupe", {"path": "series", "action": "quarantine", "files": [painting]})
    assert not aside.is_error, aside.content
    caption = Path(painting).with_suffix(".txt").as_posix()
    assert aside.structured_content["quarantine"]["moved"] == sorted([painting, caption])  # type: ignore[index]
    assert not (folder / painting).exists()
    back = await client.call_tool("dataset_dedupe", {"path": "series", "action": "undo", "files": [painting]})
    assert "Restored 2 file(s)" in back.content[0].text  # type: ignore[union-attr]
    assert _digest(folder) == before


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (640, 480), colour).save(path, "PNG")


async def test_a_link_leaving_the_project_is_skipped_and_named_by_every_dataset_tool(
    client: Client, home: Path, tmp_path: Path
) -> None:
    # Issue 16 (Low 9): dataset tools read, previewed and hard-linked a file that image_info refuses.
    folder = home / "workspace" / "datasets" / "linked"
    _png(folder / "a.png", (200, 40, 40))
    _png(folder / "b.png", (40, 200, 40))
    _png(tmp_path / "private" / "secret.png", (40, 40, 200))
    os.symlink(tmp_path / "private" / "secret.png", folder / "c-secret.png")
    refused = await client.call_tool("image_info", {"path": str(folder / "c-secret.png")})
    assert refused.is_error and "outside the folders" in refused.content[0].text  # type: ignore[union-attr]

    audit = await client.call_tool("dataset_audit", {"path": "linked"})
    assert audit.structured_content["left_out"] == ["c-secret.png"]  # type: ignore[index]
    assert audit.structured_content["images"] == 2  # type: ignore[index]
    assert "c-secret.png" in audit.content[0].text and "outside the project" in audit.content[0].text  # type: ignore[union-attr]

    review = await client.call_tool("dataset_captions", {"path": "linked", "mode": "review"})
    assert len(_pictures(review)) == 2
    assert [i["path"] for i in review.structured_content["review"]["items"]] == ["a.png", "b.png"]  # type: ignore[index]
    assert "c-secret.png" in review.content[0].text  # type: ignore[union-attr]

    dedupe = await client.call_tool("dataset_dedupe", {"path": "linked"})
    assert dedupe.structured_content["left_out"] == ["c-secret.png"]  # type: ignore[index]

    layout = await client.call_tool("dataset_structure", {"path": "linked", "name": "style", "repeats": 1})
    assert not layout.is_error, layout.content
    built = home / "workspace" / "datasets" / "linked-kohya" / "1_style"
    assert sorted(p.name for p in built.iterdir()) == ["a.png", "b.png"]
    assert "c-secret.png" in layout.content[0].text  # type: ignore[union-attr]


async def test_the_grimoire_is_refused_as_a_kohya_output_in_plain_words(
    client: Client, home: Path, series_source: tuple[Path, dict[str, Any]]
) -> None:
    _series(home, series_source[0])
    before = sorted(p.relative_to(home).as_posix() for p in (home / "grimoire").rglob("*"))
    result = await client.call_tool("dataset_structure", {"path": "series", "name": "style", "output": "grimoire"})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "grimoire" in text and "workspace/datasets/<name>-kohya" in text
    assert sorted(p.relative_to(home).as_posix() for p in (home / "grimoire").rglob("*")) == before
