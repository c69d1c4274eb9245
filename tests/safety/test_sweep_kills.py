"""The safety sweep, killed mid-call (issue 12 point 4, issue 16): the tools that write several files run in the real
server as a subprocess over stdio (``paused_server.py``: the server's file system stops at a chosen step), are
SIGKILLed there, and the server is started again on the same project. Then every file the artist had is at its place
byte for byte with its permissions, kept beside its new render (the grimoire's markdown), or in a quarantine batch
whose undo, called through the client, brings it back; and the call can simply be made again.

- dataset_dedupe quarantine: killed after 3 of 6 moves (the manifest is written first); undo restores them all.
- dataset_captions write: killed after 2 of 4 captions; each caption is its old or its new text, never torn, mode kept.
- dataset_structure: killed after 6 hard links; the sources are untouched and a rerun completes the layout.
- eye_update: killed between its JSON and the eye.md render, and at start-up during the import of the hand-kept
  eye.md; eye.md is rendered again at the restart and the artist's file stays kept.
- art_iterations: killed between iterations.md and the asset's JSON on an asset whose iterations.md was kept by hand.
- asset_export: killed after 3 of the 7 files of a favicon set; those are whole, earlier exports untouched.
- train_plan: killed between intent.md (a hand-kept record) and config.md; a new plan then goes through.

The restart is the server's start-up (its lifespan, through an in-memory client), as a new process would run it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from PIL import Image

from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import load_settings
from tests.safety.artist import (
    HAND_KEPT_RECORD,
    PAINTINGS,
    Snapshot,
    build_project,
    put_back_quarantined,
    stray_temp_files,
)

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
NO_COMFYUI = "http://127.0.0.1:9"


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


async def kill_mid_call(home: Path, call: tuple[str, dict[str, Any]] | None, pattern: str, skip: int) -> str:
    """Start the server as a subprocess over stdio, make ``call`` (None: only start it), SIGKILL the server where its
    file system paused (see ``paused_server.py``); the step it was stopped before."""
    env = {**os.environ, "ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": NO_COMFYUI}
    when = "call" if call is not None else "start"
    command = [sys.executable, "-m", "tests.support.paused_server", pattern, str(skip), when]
    seen: dict[str, str] = {}
    async with await anyio.open_process(command, env=env, cwd=ROOT) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stdin, stdout, stderr = (
            proc.stdin,
            BufferedByteReceiveStream(proc.stdout),
            BufferedByteReceiveStream(proc.stderr),
        )

        async def send(message: dict[str, Any]) -> None:
            await stdin.send(json.dumps(message).encode() + b"\n")

        async def answer() -> dict[str, Any]:
            return json.loads(await stdout.receive_until(b"\n", 10_000_000))

        async def watch_log(scope: anyio.CancelScope) -> None:
            while True:
                line = (await stderr.receive_until(b"\n", 1_000_000)).decode()
                if line.startswith("paused before "):
                    seen["paused"] = line
                    scope.cancel()
                    return

        async def make_call(scope: anyio.CancelScope) -> None:
            assert call is not None
            hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
            await send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
            assert (await answer())["id"] == 1
            await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            await send(
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": call[0], "arguments": call[1]}}
            )
            while "id" not in (reply := await answer()):
                pass  # progress notifications
            seen["answered"] = json.dumps(reply)[:2000]
            scope.cancel()

        try:
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch_log, tg.cancel_scope)
                    if call is not None:
                        tg.start_soon(make_call, tg.cancel_scope)
        finally:
            proc.kill()  # SIGKILL: no cleanup of any kind runs (and never a server left behind by a failed test)
            with anyio.fail_after(20):
                await proc.wait()
    assert "paused" in seen, f"the call finished before the step to stop at: {seen.get('answered')}"
    return seen["paused"]


@asynccontextmanager
async def restarted(home: Path) -> AsyncIterator[Client]:
    settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": NO_COMFYUI})
    async with Client(build_server(settings, app=build_app(settings)), raise_exceptions=False) as client:
        yield client


After = Callable[[Client, Path, Snapshot], Awaitable[None]]


@dataclass
class Kill:
    call: tuple[str, dict[str, Any]] | None  # None: the server is killed at start-up
    pattern: str  # the step stopped at: the first file-system step into a path holding this...
    skip: int  # ... after this many such steps went through
    after: After  # what must hold once the server started again


async def _quarantine_undone(client: Client, home: Path, project: Snapshot) -> None:
    assert len(list((home / PAINTINGS / "quarantine").rglob("*.*"))) == 1 + 3  # the manifest and the 3 moved
    assert len(await put_back_quarantined(client, home)) == 3
    assert project.check() == []


CAPTIONS = {
    "painting_00.png": "boats at dawn",
    "painting_01.jpg": "a bridge in the rain",
    "painting_04.jpg": "a lone pine",
    "painting_05.webp": "a temple roof in fog",
}


def _caption_rel(image: str) -> str:
    return f"{PAINTINGS}/{image.rsplit('.', 1)[0]}.txt"


async def _captions_old_or_new(client: Client, home: Path, project: Snapshot) -> None:
    written = {_caption_rel(image): text + "\n" for image, text in CAPTIONS.items()}
    done = 0
    for rel, new in written.items():
        path = home / rel
        if rel in project.files:
            if path.read_text(encoding="utf-8") == new:
                done += 1
                assert path.stat().st_mode & 0o777 == project.files[rel].mode, rel  # a rewrite keeps the mode
            else:
                assert project.check(changed_on_request=set(written) - {rel}) == [], rel  # still the artist's
        else:
            done += path.exists()
    assert done == 2, "two captions were written before the kill"
    again = await client.call_tool("dataset_captions", {"path": "paintings", "mode": "write", "captions": [
        {"path": image, "caption": text} for image, text in CAPTIONS.items()]})  # fmt: skip
    assert not again.is_error and len(again.structured_content["write"]["written"]) == 4, _text(again)  # type: ignore[index]
    assert project.check(changed_on_request=set(written)) == []
    assert all((home / rel).read_text(encoding="utf-8") == text for rel, text in written.items())


async def _layout_completed(client: Client, home: Path, project: Snapshot) -> None:
    assert project.check() == []
    layout = home / "workspace" / "datasets" / "paintings-kohya" / "2_style"
    assert 0 < len(list(layout.iterdir())) < 18  # cut short
    again = await client.call_tool("dataset_structure", {"path": "paintings", "name": "style", "repeats": 2})
    assert not again.is_error, _text(again)
    assert project.check() == []
    for source in (home / PAINTINGS).iterdir():
        if source.is_file():
            assert (layout / source.name).read_bytes() == source.read_bytes(), source.name


async def _eye_whole(client: Client, home: Path, project: Snapshot) -> None:
    assert project.check() == []
    profile = await client.call_tool("eye_query", {"detail": True})
    texts = [e["text"] for e in profile.structured_content["entries"]]  # type: ignore[index]
    assert "Painterly, visible brushwork" in texts and "余白を大きく" in texts
    rendered = (home / "grimoire" / "eye.md").read_text(encoding="utf-8")
    assert all(text.split(" (")[0] in rendered for text in texts)  # the view shows the document again
    added = await client.call_tool("eye_update", {"action": "add", "category": "color", "text": "teal accents"})
    assert not added.is_error, _text(added)
    assert project.check() == []


async def _asset_log_whole(client: Client, home: Path, project: Snapshot) -> None:
    assert project.check() == []  # the hand-kept iterations.md is kept beside what the killed call wrote
    logged = await client.call_tool("art_iterations", LOG_ARGS)
    assert not logged.is_error, _text(logged)
    assert project.check() == []
    history = await client.call_tool("art_iterations", {"action": "history", "project": "launch", "asset": "mascot"})
    assert history.structured_content["version_count"] == 1  # type: ignore[index]  # the killed call left no version


async def _exports_whole(client: Client, home: Path, project: Snapshot) -> None:
    assert project.check() == []
    exports = home / "workspace" / "exports"
    made = [p for p in exports.iterdir() if "icon" in p.name and not p.name.startswith(".")]
    assert len(made) == 3
    for path in made:
        with Image.open(path) as image:
            image.load()  # whole files only: each name appears complete or not at all
    again = await client.call_tool("asset_export", {"source": f"{PAINTINGS}/painting_00.png", "spec": "favicon"})
    assert not again.is_error and len(again.structured_content["files"]) == 7, _text(again)  # type: ignore[index]
    assert project.check() == []


async def _plan_whole(client: Client, home: Path, project: Snapshot) -> None:
    assert project.check() == []
    assert [p.name for p in (home / HAND_KEPT_RECORD).parent.glob("intent.backup-*.md")]
    plan = await client.call_tool("train_plan", PLAN_ARGS)
    assert not plan.is_error, _text(plan)
    gates = await client.call_tool("train_gates", {"name": "ink"})
    assert gates.structured_content["planned_config_hash"] == plan.structured_content["config_hash"]  # type: ignore[index]
    assert project.check() == []


LOG_ARGS = {"action": "log", "project": "launch", "asset": "mascot", "family": "sdxl", "seed": 1234,
            "positive": "fox mascot, waving, flat colours", "feedback": "too busy"}  # fmt: skip
PLAN_ARGS = {"name": "ink", "dataset_path": "ink", "training_type": "style", "family": "SDXL",
             "base_model": "/models/sdxl.safetensors", "gpu_vram_gb": 24, "preset": "quick"}  # fmt: skip
QUARANTINE = {
    "path": "paintings",
    "action": "quarantine",
    "files": ["painting_00.png", "painting_01.jpg", "painting_03.png"],
}
CAPTION_WRITE = {
    "path": "paintings",
    "mode": "write",
    "captions": [{"path": i, "caption": t} for i, t in CAPTIONS.items()],
}

KILLS = {
    "dataset_dedupe quarantine": Kill(("dataset_dedupe", QUARANTINE), "/quarantine/20", 3, _quarantine_undone),
    "dataset_captions write": Kill(("dataset_captions", CAPTION_WRITE), ".txt", 2, _captions_old_or_new),
    "dataset_structure": Kill(
        ("dataset_structure", {"path": "paintings", "name": "style", "repeats": 2}),
        "paintings-kohya/",
        6,
        _layout_completed,
    ),  # fmt: skip
    "eye_update": Kill(
        ("eye_update", {"action": "add", "category": "style", "text": "gouache"}), "eye.md", 0, _eye_whole
    ),
    "eye import at start-up": Kill(None, "eye.md", 0, _eye_whole),
    "art_iterations": Kill(("art_iterations", LOG_ARGS), "approved.md", 0, _asset_log_whole),
    "asset_export": Kill(
        ("asset_export", {"source": f"{PAINTINGS}/painting_00.png", "spec": "favicon"}),
        "workspace/exports/",
        3,
        _exports_whole,
    ),  # fmt: skip
    "train_plan": Kill(("train_plan", PLAN_ARGS), "config.md", 0, _plan_whole),
}


@pytest.mark.parametrize("case", list(KILLS))
async def test_a_call_killed_mid_way_loses_nothing_the_artist_made(case: str, home: Path) -> None:
    kill = KILLS[case]
    build_project(home)
    project = Snapshot.take(home)
    paused = await kill_mid_call(home, kill.call, kill.pattern, kill.skip)
    assert kill.pattern in paused, paused
    assert kill.call is not None or "eye.md" in paused
    async with restarted(home) as client:
        await kill.after(client, home, project)
    # A write cut short may leave its temp file, always hidden (a dot name) so no tool or trainer takes it as work.
    assert [rel for rel in stray_temp_files(home) if not Path(rel).name.startswith(".")] == []
