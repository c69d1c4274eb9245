"""The dataset tools through a real MCP client (in memory)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from ategnatos_mcp.settings import Settings, load_settings
from ategnatos_mcp.training.gates import read_gates
from ategnatos_mcp.wiring import Wiring
from tests.support.datasets import generated_dataset, ground_truth


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_dataset(tmp_path_factory.getbasetemp())


@pytest.fixture
def settings(home: Path, generated: Path) -> Settings:
    # The generated dataset lives outside the home: allow it as an extra root, as an artist would their art folder.
    return load_settings(
        env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9"},
        extra_roots=[str(generated)],
    )


def _small_set(generated: Path, target: Path) -> dict[str, str]:
    """A few real files from the generated set: one picture with two planted copies, and three others."""
    gt = ground_truth(generated)
    group = next(g for g in gt["duplicate_groups"] if {c["kind"] for c in g["copies"]} & {"resize", "mixed", "exact"})
    chosen = [group["original"], *(c["path"] for c in group["copies"])]
    members = set(chosen)
    others = [p for p, info in gt["images"].items() if info["role"] == "base" and p not in members][:3]
    target.mkdir(parents=True)
    names = {}
    for i, rel in enumerate(chosen + others):
        name = f"{i:02d}{Path(rel).suffix}"
        shutil.copy(generated / "dataset" / rel, target / name)
        names[rel] = name
    return {
        "original": names[group["original"]],
        **{f"copy{i}": names[c["path"]] for i, c in enumerate(group["copies"])},
    }


def _sha(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


async def test_dataset_tools_are_listed_with_output_schemas(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("dataset_audit", "dataset_dedupe", "dataset_captions", "dataset_structure"):
        assert name in tools
        assert tools[name].output_schema is not None


async def test_audit_records_gate_one_and_reports_progress(client: Client, app: Wiring, generated: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await client.call_tool(
        "dataset_audit",
        {"path": str(generated / "dataset"), "training_name": "mystyle", "detail": 5},
        progress_callback=on_progress,
    )
    assert not result.is_error, result.content
    data = result.structured_content
    assert data is not None
    assert data["go"] is False and data["layout"] == "kohya"
    assert len(data["problems"]) == 5 and sum(data["problem_counts"].values()) > 5
    assert "NO-GO" in result.content[0].text
    report = app.settings.grimoire_dir / "training" / "mystyle" / "dataset-report.md"
    assert report.read_text(encoding="utf-8").startswith("# Dataset report: mystyle")
    gates = await read_gates(app.store, "mystyle")
    assert gates.dataset.status == "failed"
    assert gates.dataset.fingerprint == data["fingerprint"]
    assert seen and seen[-1][0] == seen[-1][1]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda home: home / "workspace" / "nope", "does not exist"),
        (lambda home: home / "workspace" / "file.png", "is a file"),
        (lambda home: home.parent, "outside the folders"),
        (lambda home: home / "workspace" / "loop", "symlink loop"),
    ],
)
async def test_bad_dataset_paths_are_refused_in_plain_words(
    client: Client, home: Path, make: Any, expected: str
) -> None:
    (home / "workspace" / "file.png").write_bytes(b"x")
    loop = home / "workspace" / "loop"
    if not loop.is_symlink():
        os.symlink(loop, loop)
    result = await client.call_tool("dataset_audit", {"path": str(make(home))})
    assert result.is_error
    assert expected in result.content[0].text


async def test_dedupe_quarantine_and_undo_restore_exact_bytes(client: Client, home: Path, generated: Path) -> None:
    folder = home / "workspace" / "datasets" / "ds"
    names = _small_set(generated, folder)
    before = _sha(folder)
    report = await client.call_tool("dataset_dedupe", {"path": "workspace/datasets/ds"})
    assert not report.is_error, report.content
    data = report.structured_content
    assert data is not None and len(data["groups"]) == 1
    group = data["groups"][0]
    assert {f["path"] for f in group["files"]} == set(names.values())
    assert _sha(folder) == before  # report mode changes nothing

    moved = await client.call_tool("dataset_dedupe", {"path": "workspace/datasets/ds", "action": "quarantine"})
    q = moved.structured_content["quarantine"]  # type: ignore[index]
    assert len(q["moved"]) == len(names) - 1
    assert (folder / group["keep"]).exists()

    undone = await client.call_tool("dataset_dedupe", {"path": "workspace/datasets/ds", "action": "undo"})
    assert not undone.is_error
    assert _sha(folder) == before


async def test_captions_review_write_and_summary(client: Client, home: Path, generated: Path) -> None:
    folder = home / "workspace" / "datasets" / "cap"
    _small_set(generated, folder)
    review = await client.call_tool("dataset_captions", {"path": str(folder), "mode": "review", "count": 4})
    assert not review.is_error, review.content
    images = [c for c in review.content if c.type == "image"]
    assert len(images) == 4
    assert all(len(base64.b64decode(i.data)) <= 60_000 for i in images)  # type: ignore[union-attr]
    items = review.structured_content["review"]["items"]  # type: ignore[index]
    assert "style" in review.structured_content["review"]["guide"]  # type: ignore[index]

    captions = [{"path": it["path"], "caption": f"a picture ,\r\nnumber {i}"} for i, it in enumerate(items)]
    written = await client.call_tool(
        "dataset_captions", {"path": str(folder), "mode": "write", "trigger_word": "mystyle", "captions": captions}
    )
    assert not written.is_error, written.content
    first = folder / Path(items[0]["path"]).with_suffix(".txt")
    assert first.read_text(encoding="utf-8") == "mystyle, a picture, number 0\n"

    summary = await client.call_tool("dataset_captions", {"path": str(folder), "mode": "summary"})
    stats = summary.structured_content["tag_summary"]["stats"]  # type: ignore[index]
    assert stats["captioned"] == 4 and stats["missing"] == len(list(folder.glob("*.*"))) - 8


async def test_caption_review_sends_the_guide_once_then_points_to_it(
    client: Client, home: Path, generated: Path
) -> None:
    folder = home / "workspace" / "datasets" / "guide"
    _small_set(generated, folder)
    args: dict[str, Any] = {"path": str(folder), "mode": "review", "count": 2}
    first = await client.call_tool("dataset_captions", {**args, "start": 0})
    guide = first.structured_content["review"]["guide"]  # type: ignore[index]
    assert guide and "style" in guide
    assert guide.strip() in first.content[0].text  # type: ignore[union-attr]

    later = await client.call_tool("dataset_captions", {**args, "start": 2})
    assert not later.is_error, later.content
    review = later.structured_content["review"]  # type: ignore[index]
    assert review["guide"] is None
    assert "include_guide=true" in review["guide_note"] and "ategnatos://dataset/caption-guide" in review["guide_note"]
    text = later.content[0].text  # type: ignore[union-attr]
    assert guide.splitlines()[0] not in text and review["guide_note"] in text
    assert len(text) < len(guide)

    asked = await client.call_tool("dataset_captions", {**args, "start": 2, "include_guide": True})
    assert asked.structured_content["review"]["guide"] == guide  # type: ignore[index]
    assert asked.structured_content["review"]["guide_note"] is None  # type: ignore[index]
    assert guide in asked.content[0].text  # type: ignore[union-attr]

    resource = await client.read_resource("ategnatos://dataset/caption-guide")
    assert resource.contents[0].text == guide  # type: ignore[union-attr]


async def test_structure_builds_kohya_folders_once(client: Client, home: Path, generated: Path) -> None:
    folder = home / "workspace" / "datasets" / "flat"
    _small_set(generated, folder)
    args = {"path": "workspace/datasets/flat", "name": "mystyle", "target_steps": 100, "epochs": 2}
    first = await client.call_tool("dataset_structure", args)
    assert not first.is_error, first.content
    data = first.structured_content
    assert data is not None
    images = len(list(folder.iterdir()))
    folder_name = f"{-(-100 // (images * 2))}_mystyle"
    assert data["concepts"] == {folder_name: images}
    assert (home / "workspace" / "datasets" / "flat-kohya" / folder_name).is_dir()
    again = await client.call_tool("dataset_structure", args)
    assert again.structured_content["unchanged"] == images  # type: ignore[index]
    assert again.structured_content["linked"] == 0  # type: ignore[index]


async def test_a_long_read_answers_in_bounded_time_and_the_next_call_continues(
    client: Client, app: Wiring, generated: Path
) -> None:
    args: dict[str, Any] = {"path": str(generated / "dataset"), "detail": 0}
    first = await client.call_tool("dataset_audit", {**args, "wait_seconds": 0.01})
    assert not first.is_error, first.content
    assert first.structured_content["complete"] is False  # type: ignore[index]
    assert "Still reading" in first.content[0].text
    # The call returned, the reading goes on in the background: wait for it, then nothing is left to decode.
    job = app.datasets.jobs.running(generated / "dataset")
    assert job is not None
    with anyio.fail_after(120):
        await job.finished.wait()
    second = await client.call_tool("dataset_audit", args)
    data = second.structured_content
    assert data is not None and data["complete"] is True
    assert data["images"] > 0 and data["decoded"] == 0


async def test_audit_can_quarantine_unreadable_files_and_undo_puts_them_back(
    client: Client, home: Path, generated: Path
) -> None:
    folder = home / "workspace" / "datasets" / "broken"
    _small_set(generated, folder)
    gt = ground_truth(generated)
    for kind in ("truncated_jpeg", "zero_byte", "text_as_png"):
        rel = gt["bad_files"][kind][0]
        shutil.copy(generated / "dataset" / rel, folder / f"bad-{kind}{Path(rel).suffix}")
    (folder / "bad-zero_byte.txt").write_text("a caption for a broken file", encoding="utf-8")
    before = _sha(folder)
    result = await client.call_tool("dataset_audit", {"path": str(folder), "quarantine_unreadable": True})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data is not None
    moved = set(data["quarantine"]["moved"])
    assert moved == {"bad-truncated_jpeg.jpg", "bad-zero_byte.jpg", "bad-zero_byte.txt", "bad-text_as_png.png"}
    assert data["problem_counts"].get("truncated") is None  # the verdict describes the folder as it is now
    assert "Moved 4 unreadable file(s)" in result.content[0].text
    undone = await client.call_tool("dataset_dedupe", {"path": str(folder), "action": "undo"})
    assert not undone.is_error
    assert _sha(folder) == before


async def test_a_dataset_in_workspace_datasets_can_be_named_instead_of_given_by_path(
    client: Client, app: Wiring, generated: Path
) -> None:
    _small_set(generated, app.settings.datasets_dir / "paintings")
    result = await client.call_tool("dataset_audit", {"path": "paintings"})
    assert not result.is_error, result.content
    assert result.structured_content["dataset"] == str(app.settings.datasets_dir / "paintings")  # type: ignore[index]
    missing = await client.call_tool("dataset_dedupe", {"path": "paintngs"})
    assert missing.is_error
    assert "no dataset folder 'paintngs'" in missing.content[0].text  # type: ignore[union-attr]
    assert "Datasets there now: paintings." in missing.content[0].text  # type: ignore[union-attr]
