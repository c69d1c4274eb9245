"""Two conversations move files of one dataset into or out of quarantine at the same moment: no batch is lost.

Two servers (two wirings, two MCP clients) on one ATEGNATOS_HOME and real image files. The first server's move is
held at its first rename into ``quarantine/`` (in its worker thread; the hold is made in this test process by
wrapping ``os.rename``, never in the server's code), after it read the manifest; the second server's call comes
exactly then. Before, the first server then wrote its manifest over the second's batch: files sat in quarantine
that no manifest listed, and undo answered "Nothing is in quarantine".
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import pytest
from PIL import Image

from ategnatos_mcp.settings import Settings
from tests.support.two_servers import text_of, two_servers

pytestmark = pytest.mark.integration

DATASET = "workspace/datasets/paintings"


def _paintings(home: Path) -> dict[str, str]:
    folder = home / DATASET
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(6):
        blocks = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
        Image.fromarray(blocks).resize((160, 128)).save(folder / f"painting_{i}.png")
        (folder / f"painting_{i}.txt").write_text(f"ink wash, painting {i}\n", encoding="utf-8")
    return _files(folder)


def _files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "quarantine" not in p.parts
    }


class _HeldRename:
    """``os.rename`` that holds the first rename into a quarantine folder until released."""

    def __init__(self, original: Callable[..., Any]) -> None:
        self.original = original
        self.reached = threading.Event()
        self.go = threading.Event()
        self.armed = True

    def __call__(self, src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        if self.armed and "/quarantine/" in os.fspath(dst):
            self.armed = False
            self.reached.set()
            assert self.go.wait(30)
        return self.original(src, dst, *args, **kwargs)


async def test_two_conversations_quarantining_at_once_lose_no_batch(
    settings: Settings, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _paintings(home)
    held = _HeldRename(os.rename)
    monkeypatch.setattr(os, "rename", held)
    first_files = {"path": DATASET, "action": "quarantine", "files": ["painting_0.png", "painting_1.png"]}
    second_files = {"path": DATASET, "action": "quarantine", "files": ["painting_4.png", "painting_5.png"]}
    async with two_servers(settings) as (first, second):
        (await second.app.dataset_service()).busy_wait_seconds = 0  # answer at once instead of waiting a moment
        answers: dict[str, Any] = {}

        async def move_first() -> None:
            answers["first"] = await first.client.call_tool("dataset_dedupe", first_files)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(move_first)
                await anyio.to_thread.run_sync(held.reached.wait)
                answers["second"] = await second.client.call_tool("dataset_dedupe", second_files)
                held.go.set()

        assert not answers["first"].is_error, text_of(answers["first"])
        busy = answers["second"]
        assert busy.is_error and "Another conversation is moving files of this dataset" in text_of(busy), text_of(busy)
        assert "this call moved nothing" in text_of(busy) and "Make the same call again" in text_of(busy)
        again = await second.client.call_tool("dataset_dedupe", second_files)
        assert not again.is_error, text_of(again)
        assert sorted(again.structured_content["quarantine"]["moved"]) == [  # type: ignore[index]
            "painting_4.png",
            "painting_4.txt",
            "painting_5.png",
            "painting_5.txt",
        ]
        twice = await first.client.call_tool("dataset_dedupe", first_files)  # the first conversation, once more
        skipped = twice.structured_content["quarantine"]["skipped"]  # type: ignore[index]
        assert [s.split(":")[0] for s in skipped] == ["painting_0.png", "painting_1.png"], skipped
        assert all("already in quarantine (batch " in s for s in skipped), skipped

        # Every batch is in the manifest: undo, from either conversation, brings every file back byte for byte.
        for client in (first.client, second.client):
            undone = await client.call_tool("dataset_dedupe", {"path": DATASET, "action": "undo"})
            assert not undone.is_error, text_of(undone)
        nothing = await first.client.call_tool("dataset_dedupe", {"path": DATASET, "action": "undo"})
        assert nothing.is_error and "Nothing is in quarantine" in text_of(nothing)
    assert _files(home / DATASET) == before
