"""A kill leaves nothing half-made where the artist looks, and a write still under way in another server survives.

The real server runs as a subprocess over stdio and is held at one file-system step of a call (``paused.py``):
its temp file written and ``flock``-ed, not yet renamed into place. Then:

- while it is held, a second server on the same project starts (its start-up tidy of the workspace) and reads the
  same dataset (the dataset tools tidy the folder they use): the held write's temp file survives both;
- once it is SIGKILLed, the next use of that folder removes the temp file, and nothing else;
- a kill mid-export, mid-download of a ComfyUI picture, or mid-layout (``dataset_structure``): after a restart, no
  temp file is left in the exports or outputs, and the cut-short layout is named by the audit, with the call that
  finishes it, until a rerun has finished it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import load_settings
from ategnatos_mcp.wiring import Wiring
from tests.safety.artist import PAINTINGS, Snapshot, build_project
from tests.safety.session import text_of
from tests.support.paused import NO_COMFYUI, paused_call

pytestmark = [pytest.mark.integration]

TEMP = "*.ategnatos.tmp"
CAPTIONS = {"painting_00.png": "boats at dawn", "painting_01.jpg": "a bridge in the rain"}
CAPTION_WRITE = {
    "path": "paintings",
    "mode": "write",
    "captions": [{"path": i, "caption": t} for i, t in CAPTIONS.items()],
}


@asynccontextmanager
async def second_server(home: Path, comfyui_url: str = NO_COMFYUI) -> AsyncIterator[tuple[Client, Wiring]]:
    """A server started on the same project (in memory), once its start-up tidy of the workspace is done."""
    settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": comfyui_url})
    app = build_app(settings)
    async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
        with anyio.fail_after(20):
            await app.tidied.wait()
        yield client, app


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.rglob(TEMP))


def _files(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode & 0o777)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


async def test_a_write_under_way_in_another_server_survives_the_sweep_and_its_leftover_goes_on_next_use(
    home: Path,
) -> None:
    build_project(home)
    art = home / "my-art" / "paintings"  # the artist's own folder, beside the workspace (extra_roots)
    shutil.copytree(home / PAINTINGS, art)
    (home / "ategnatos.toml").write_text(f"extra_roots = [{json.dumps(str(art.parent))}]\n", encoding="utf-8")
    before = _files(art)
    write = {**CAPTION_WRITE, "path": str(art)}
    review = {"path": str(art), "mode": "review", "count": 2}
    async with paused_call(home, ("dataset_captions", write), ".txt", 1):
        [held] = _temps(art)  # the second caption's write: written, locked, not yet in place
        async with second_server(home) as (client, _app):
            for tool, args in (("dataset_captions", review), ("dataset_audit", {"path": str(art)})):
                answer = await client.call_tool(tool, args)
                assert not answer.is_error, text_of(answer)
                assert held.exists(), tool  # its writer, another server, still holds it
    # The writer was SIGKILLed: its temp file is a leftover now. The artist's folder is not ours to walk at
    # start-up; it is tidied when a tool next uses it, and only that file goes.
    async with second_server(home) as (client, _app):
        assert held.exists()
        answer = await client.call_tool("dataset_captions", review)
        assert not answer.is_error, text_of(answer)
        assert not held.exists()
    after = _files(art)
    changed = [rel for rel in after if after[rel] != before.get(rel)]
    assert len(changed) == 1 and changed[0].endswith(".txt")  # the caption written before the kill, whole
    assert (art / changed[0]).read_text(encoding="utf-8").strip() in CAPTIONS.values()
    assert set(after) == set(before)


GENERATE = {
    "template": "txt2img-sdxl",
    "params": {"prompt": "ink wash hills", "checkpoint": "mcp_random_sd15_layout.safetensors", "steps": 2,
               "width": 64, "height": 64},
    "wait_seconds": 20,
}  # fmt: skip


@pytest.mark.parametrize(
    ("call", "pattern", "skip", "folder"),
    [
        (("asset_export", {"source": f"{PAINTINGS}/painting_00.png", "spec": "favicon"}), "workspace/exports/", 3,
         "workspace/exports"),
        (("comfyui_submit", GENERATE), "workspace/outputs/", 0, "workspace/outputs"),
    ],
    ids=["asset_export", "comfyui download"],
)  # fmt: skip
async def test_a_kill_mid_write_leaves_no_temp_file_in_the_exports_or_outputs(
    home: Path, call: tuple[str, dict[str, Any]], pattern: str, skip: int, folder: str
) -> None:
    from tests.support.fake_comfyui import serve_fake

    build_project(home)
    project = Snapshot.take(home)
    async with serve_fake(node_seconds=0.02) as fake:
        async with paused_call(home, call, pattern, skip, comfyui_url=fake.url):
            assert len(_temps(home / folder)) == 1  # written and locked, not yet in place when the kill comes
    async with second_server(home):
        pass
    assert _temps(home / folder) == []
    assert project.check() == []
    for path in (home / folder).rglob("*"):
        assert path.is_dir() or not path.name.startswith("."), path  # only whole, named files are left


async def test_a_layout_cut_short_by_a_kill_is_named_until_a_rerun_finishes_it(home: Path) -> None:
    build_project(home)
    project = Snapshot.take(home)
    layout = {"path": "paintings", "name": "style", "repeats": 2}
    async with paused_call(home, ("dataset_structure", layout), "paintings-kohya/", 6):
        pass  # killed after six of its files were linked into place
    kohya = {"path": "workspace/datasets/paintings-kohya"}
    async with second_server(home) as (client, _app):
        audit = await client.call_tool("dataset_audit", kohya)
        result = audit.structured_content
        assert result is not None and result["go"] is False, text_of(audit)
        assert "This kohya layout was cut short while it was being made (started on " in result["reasons"][0]
        assert "Run dataset_structure again with the same folders to finish it" in text_of(audit)
        finished = await client.call_tool("dataset_structure", layout)
        assert not finished.is_error, text_of(finished)
        assert "was cut short; this run finishes it" in text_of(finished)
        again = await client.call_tool("dataset_audit", kohya)
        assert not any("cut short" in reason for reason in again.structured_content["reasons"])  # type: ignore[index]
        assert "cut short" not in text_of(await client.call_tool("dataset_structure", layout))
    assert project.check() == []
