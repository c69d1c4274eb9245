"""Reading a large dataset outlives one tool call: the probe runs as a background job the next call joins.

MCP clients cut calls off after about a minute; decoding 10,000 images takes longer. A call waits a
bounded time; if the job is not done it answers "still reading, N of M" and the job carries on in the
server's task group, filling the cache. The next call joins the same job (or finds it finished).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ategnatos_mcp.dataset.audit import LoadedDataset, ProofBook
from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.captioning import index_captions
from ategnatos_mcp.dataset.runner import ProbeRunner
from ategnatos_mcp.dataset.scan import DatasetScan, scan_dataset
from ategnatos_mcp.progress import Progress

if TYPE_CHECKING:
    from ategnatos_mcp.dataset.probe import ProbeRecord

__all__ = ["ProbeJob", "ProbeJobs", "Spawner", "StillReading"]

Spawner = Callable[[Callable[[], Coroutine[Any, Any, None]]], None]


class StillReading(Exception):
    """The dataset is still being read in the background; ``done`` of ``total`` images so far."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"{done} of {total}")
        self.done = done
        self.total = total


@dataclass
class ProbeJob:
    root: Path
    finished: anyio.Event = field(default_factory=anyio.Event)
    done: int = 0
    total: int = 0
    result: LoadedDataset | None = None
    error: BaseException | None = None
    listeners: list[Progress] = field(default_factory=list)
    _last_report: float = 0.0

    async def report(self, done: float, total: float | None, message: str | None) -> None:
        self.done, self.total = int(done), int(total or 0)
        now = time.monotonic()
        # Throttled: a progress notification per chunk would flood the client on 10,000 images.
        if now - self._last_report < 0.5 and done != total:
            return
        self._last_report = now
        for listener in list(self.listeners):
            await listener(done, total, message)


class ProbeJobs:
    """At most one reading job per dataset folder."""

    def __init__(
        self, cache: ProbeCache, runner: ProbeRunner, spawn: Spawner | None, roots: Sequence[Path] | None = None
    ) -> None:
        """``roots``: the project's folders; linked files pointing outside them are left out (and listed)."""
        self.cache = cache
        self.runner = runner
        self.spawn = spawn
        self.roots = roots
        self._jobs: dict[Path, ProbeJob] = {}
        self._last: dict[Path, LoadedDataset] = {}

    async def _run(self, job: ProbeJob) -> None:
        try:
            scan = await anyio.to_thread.run_sync(lambda: scan_dataset(job.root, roots=self.roots, tidy=True))
            last = self._last.get(job.root)
            if last is not None and _same_files(last, scan):
                # Nothing changed since the last read (typically dedupe right after audit): no cache query, no
                # caption re-read.
                total = len(scan.images)
                await job.report(total, total, f"{total} of {total} images already known")
                job.result = LoadedDataset(
                    scan=scan, records=dict(last.records), decoded=0, captions=last.captions, proofs=last.proofs
                )
                return
            records, decoded = await self.runner.probe(scan.images, self.cache, job.report)
            captions = await anyio.to_thread.run_sync(index_captions, scan)
            proofs = await anyio.to_thread.run_sync(lambda: self._proofs(records))
            job.result = LoadedDataset(scan=scan, records=records, decoded=decoded, captions=captions, proofs=proofs)
            self._last = {job.root: job.result}  # one dataset kept: it is what the next call most likely reads
        except Exception as exc:  # handed to the caller that waits for this job
            job.error = exc
        finally:
            job.finished.set()

    def _proofs(self, records: dict[str, ProbeRecord]) -> ProofBook:
        from ategnatos_mcp.dataset.verify import VERSION

        return ProofBook(self.cache.proofs((r.sha256 for r in records.values() if r.ok), version=VERSION))

    def keep_proofs(self, loaded: LoadedDataset) -> None:
        """Store the proofs made since the dataset was read (blocking: run it in a worker thread)."""
        from ategnatos_mcp.dataset.verify import VERSION

        self.cache.store_proofs(loaded.proofs.take_fresh(), version=VERSION)

    def running(self, root: Path) -> ProbeJob | None:
        """The job reading ``root`` right now, if any."""
        job = self._jobs.get(root)
        return job if job is not None and not job.finished.is_set() else None

    async def load(self, root: Path, *, wait_seconds: float | None, progress: Progress | None) -> LoadedDataset:
        """The dataset read (cache first), waiting at most ``wait_seconds`` when a background job can carry on.

        Raises:
            StillReading: the job is still running after ``wait_seconds``.
        """
        job = self._jobs.get(root)
        if job is not None and job.finished.is_set():
            # Finished while nobody waited: its snapshot may be stale, and a fresh read hits the warm cache.
            job = None
        if job is None:
            job = ProbeJob(root=root)
            self._jobs[root] = job
            if self.spawn is not None and wait_seconds is not None:
                self.spawn(lambda: self._run(job))
            else:
                wait_seconds = None
                if progress is not None:
                    job.listeners.append(progress)
                await self._run(job)
        if progress is not None and progress not in job.listeners:
            job.listeners.append(progress)
        try:
            if wait_seconds is None:
                await job.finished.wait()
            else:
                with anyio.move_on_after(wait_seconds):
                    await job.finished.wait()
        finally:
            if progress is not None and progress in job.listeners:
                job.listeners.remove(progress)
        if not job.finished.is_set():
            raise StillReading(job.done, job.total)
        self._jobs.pop(root, None)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result


def _same_files(last: LoadedDataset, scan: DatasetScan) -> bool:
    """The folder holds exactly the files (same sizes and times) it held at ``last``, and none was unreadable then."""
    old = last.scan
    return (
        old.images == scan.images
        and old.captions == scan.captions
        and old.unreadable == scan.unreadable == []
        and all(r.error != "unreadable" for r in last.records.values())
    )
