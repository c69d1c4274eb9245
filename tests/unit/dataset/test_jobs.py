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


def _images(root: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        buf = io.BytesIO()
        Image.new("RGB", (64, 64 + i), (i * 7 % 255, 80, 0)).save(buf, "PNG")
        (root / name).write_bytes(buf.getvalue())


async def test_a_file_that_kills_the_decoder_is_reported_as_damaged_and_everything_else_is_read(tmp_path: Path) -> None:
    from ategnatos_mcp.dataset.problems import file_problems
    from ategnatos_mcp.dataset.runner import CRASHED_DETAIL
    from tests.support.crashing_probe import probe_or_crash

    root = tmp_path / "ds"
    root.mkdir()
    names = [f"{i:02d}.png" for i in range(40)]
    names[5], names[29] = "crash-a.png", "crash-b.png"
    _images(root, names)
    runner = ProbeRunner(workers=2, probe_fn=probe_or_crash)
    try:
        jobs = ProbeJobs(ProbeCache(tmp_path / "c.sqlite", version=1), runner, spawn=None)
        with anyio.fail_after(60):
            loaded = await jobs.load(root, wait_seconds=None, progress=None)
        assert sorted(loaded.records) == sorted(names)
        crashed = {rel for rel, r in loaded.records.items() if r.error_detail == CRASHED_DETAIL}
        assert crashed == {"crash-a.png", "crash-b.png"}
        assert all(r.ok for rel, r in loaded.records.items() if rel not in crashed)
        codes = {p.problem for p in file_problems("crash-a.png", loaded.records["crash-a.png"], 1024)}
        assert codes == {"corrupt"}

        _images(root, ["zz-new.png"])  # the pool works again afterwards
        again = await jobs.load(root, wait_seconds=None, progress=None)
        assert again.decoded == 1 and again.records["zz-new.png"].ok
    finally:
        runner.close()


async def test_a_worker_that_dies_once_for_no_lasting_reason_costs_nothing(tmp_path: Path) -> None:
    from tests.support.crashing_probe import crash_once

    root = tmp_path / "ds"
    root.mkdir()
    names = [f"{i:02d}.png" for i in range(30)]
    names[3] = "flaky.png"
    _images(root, names)
    runner = ProbeRunner(workers=2, probe_fn=crash_once)
    try:
        jobs = ProbeJobs(ProbeCache(tmp_path / "c.sqlite", version=1), runner, spawn=None)
        with anyio.fail_after(60):
            loaded = await jobs.load(root, wait_seconds=None, progress=None)
        assert (root / "flaky.crashed").exists()  # it did die once
        assert sorted(loaded.records) == sorted(names) and all(r.ok for r in loaded.records.values())
    finally:
        runner.close()
