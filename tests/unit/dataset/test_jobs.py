from __future__ import annotations

import io
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import Image

from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.jobs import ProbeJobs, StillReading
from ategnatos_mcp.dataset.runner import ProbeRunner

pytestmark = pytest.mark.anyio


def _folder(tmp_path: Path, n: int = 3) -> Path:
    root = tmp_path / "ds"
    root.mkdir()
    for i in range(n):
        buf = io.BytesIO()
        Image.new("RGB", (64 + i, 64), (i * 40, 0, 0)).save(buf, "PNG")
        (root / f"{i}.png").write_bytes(buf.getvalue())
    return root


async def test_a_call_that_stops_waiting_leaves_the_job_running_for_the_next_call(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    runner = ProbeRunner(workers=1)
    try:
        async with anyio.create_task_group() as tg:

            def spawn(job: Callable[[], Coroutine[Any, Any, None]]) -> None:
                tg.start_soon(job)

            jobs = ProbeJobs(ProbeCache(tmp_path / "c.sqlite", version=1), runner, spawn)
            with pytest.raises(StillReading):
                await jobs.load(root, wait_seconds=0, progress=None)
            running = jobs.running(root)
            assert running is not None
            with anyio.fail_after(30):
                loaded = await jobs.load(root, wait_seconds=30, progress=None)
            assert running.finished.is_set()
            assert sorted(loaded.records) == ["0.png", "1.png", "2.png"]
            assert loaded.decoded == 3
            assert jobs.running(root) is None
            again = await jobs.load(root, wait_seconds=30, progress=None)
            assert again.decoded == 0
    finally:
        runner.close()


async def test_without_a_task_group_the_call_reads_everything_itself(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    runner = ProbeRunner(workers=1)
    try:
        jobs = ProbeJobs(ProbeCache(tmp_path / "c.sqlite", version=1), runner, spawn=None)
        seen: list[float] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            seen.append(done)

        loaded = await jobs.load(root, wait_seconds=0, progress=progress)
        assert len(loaded.records) == 3
        assert seen[-1] == 3
    finally:
        runner.close()


async def test_an_unchanged_folder_is_served_from_the_last_read_and_any_change_reads_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path)
    (root / "0.txt").write_text("a red square", encoding="utf-8")
    runner = ProbeRunner(workers=1)
    cache = ProbeCache(tmp_path / "c.sqlite", version=1)
    lookups: list[int] = []
    real_lookup = cache.lookup
    monkeypatch.setattr(cache, "lookup", lambda entries: lookups.append(len(entries)) or real_lookup(entries))
    try:
        jobs = ProbeJobs(cache, runner, spawn=None)
        first = await jobs.load(root, wait_seconds=None, progress=None)
        again = await jobs.load(root, wait_seconds=None, progress=None)
        assert lookups == [3], "the second read of an unchanged folder must not query the cache"
        assert again.records.keys() == first.records.keys() and again.decoded == 0
        assert again.captions.texts == first.captions.texts

        (root / "0.txt").write_text("a red square, oil paint", encoding="utf-8")  # a caption edited
        edited = await jobs.load(root, wait_seconds=None, progress=None)
        assert lookups == [3, 3]
        assert "oil paint" in edited.captions.texts["0.png"]

        (root / "2.png").unlink()  # an image removed
        removed = await jobs.load(root, wait_seconds=None, progress=None)
        assert sorted(removed.records) == ["0.png", "1.png"] and lookups == [3, 3, 2]
    finally:
        runner.close()
