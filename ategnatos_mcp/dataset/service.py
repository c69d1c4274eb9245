"""DatasetService: one object per server that the tools call; it owns the probe cache and worker pool."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import anyio.to_thread

from ategnatos_mcp.dataset.audit import AuditOptions, audit_loaded, unreadable_files
from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.captioning import review_batch, summarise_captions, write_captions
from ategnatos_mcp.dataset.dedupe_report import dedupe_answer, dedupe_pictures
from ategnatos_mcp.dataset.jobs import ProbeJobs, Spawner, StillReading
from ategnatos_mcp.dataset.models import (
    AuditResult,
    CaptionReview,
    CaptionSummary,
    CaptionWrite,
    CaptionWriteResult,
    DedupeResult,
    QuarantineResult,
    StructureResult,
)
from ategnatos_mcp.dataset.quarantine import BUSY_WAIT_SECONDS, quarantine_files, undo_quarantine
from ategnatos_mcp.dataset.runner import ProbeRunner
from ategnatos_mcp.dataset.structure import Concept, Protected, build_structure
from ategnatos_mcp.progress import Progress

__all__ = ["CACHE_FILE", "DatasetService"]

CACHE_FILE = "dataset-probe.sqlite"


class DatasetService:
    """Dataset preparation. Paths given here are already confined by the caller."""

    def __init__(
        self,
        *,
        cache_dir: Path,
        workers: int,
        threshold: int,
        clock: Callable[[], datetime],
        roots: Sequence[Path] | None = None,
        spawn: Spawner | None = None,
        wait_seconds: float | None = None,
    ) -> None:
        """``spawn`` starts a background task that outlives the call; without it, calls wait until done.

        ``roots``: the project's folders. A linked file in a dataset that points outside them is left alone (not
        read, previewed, linked or moved) and named in the answer: the rule ``paths.confine`` applies to paths.
        """
        from ategnatos_mcp.dataset.probe import PROBE_VERSION

        self.cache = ProbeCache(cache_dir / CACHE_FILE, version=PROBE_VERSION)
        self.runner = ProbeRunner(workers)
        self.roots = list(roots) if roots is not None else None
        self.jobs = ProbeJobs(self.cache, self.runner, spawn, self.roots)
        self.threshold = threshold
        self.clock = clock
        self.wait_seconds = wait_seconds
        self.busy_wait_seconds = BUSY_WAIT_SECONDS  # for another conversation's quarantine move in the same dataset

    def close(self) -> None:
        self.runner.close()

    async def audit(
        self, root: Path, options: AuditOptions, progress: Progress | None = None, *, wait_seconds: float | None = None
    ) -> AuditResult:
        """Gate 1: the full audit with a GO/NO-GO (or ``complete=False`` while images are still being read)."""
        try:
            loaded = await self.jobs.load(
                root, wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds, progress=progress
            )
        except StillReading as busy:
            return AuditResult(dataset=str(root), complete=False, images_read=busy.done, images=busy.total)
        broken = unreadable_files(loaded) if options.quarantine_unreadable else {}
        if not broken:
            result = await audit_loaded(root, loaded, options)
            await anyio.to_thread.run_sync(lambda: self.jobs.keep_proofs(loaded))
            return result
        when = self.clock()
        moved = await anyio.to_thread.run_sync(lambda: self._quarantine(root, broken, when))
        # The verdict must describe the folder as it is now: read it again (every image is cached).
        loaded = await self.jobs.load(root, wait_seconds=None, progress=None)
        result = await audit_loaded(root, loaded, options)
        await anyio.to_thread.run_sync(lambda: self.jobs.keep_proofs(loaded))
        result.quarantine = moved
        return result

    async def dedupe(
        self,
        root: Path,
        *,
        threshold: int | None,
        mirror: bool,
        quarantine: bool,
        start: int = 0,
        shown: int = 12,
        progress: Progress | None = None,
        wait_seconds: float | None = None,
    ) -> tuple[DedupeResult, list[bytes]]:
        """Proven duplicate groups and look-alikes, a page of them with contact sheets.

        With ``quarantine`` the extra copies of every group (and their captions) move to ``quarantine/``;
        look-alikes never do.
        """
        from ategnatos_mcp.dataset.dedupe import find_duplicates

        limit = self.threshold if threshold is None else threshold
        try:
            loaded = await self.jobs.load(
                root, wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds, progress=progress
            )
        except StillReading as busy:
            return DedupeResult(dataset=str(root), complete=False, images_read=busy.done, images_checked=busy.total), []
        found = await anyio.to_thread.run_sync(
            lambda: find_duplicates(
                loaded.records, threshold=limit, mirror=mirror, mtimes=loaded.mtimes, memo=loaded.proofs
            )
        )
        await anyio.to_thread.run_sync(lambda: self.jobs.keep_proofs(loaded))
        left_out = [e.rel for e in loaded.scan.outside_links]

        def answer(moved: QuarantineResult | None = None) -> DedupeResult:
            return dedupe_answer(
                root,
                found,
                loaded.records,
                threshold=limit,
                mirror=mirror,
                start=start,
                shown=shown,
                left_out=left_out,
                moved=moved,
            )

        result = answer()
        # Drawn before anything moves: the sheets show the files where the artist knows them.
        pictures = await anyio.to_thread.run_sync(lambda: dedupe_pictures(root, found, result))
        if quarantine:
            moves = {m.rel: f"{m.match} of {c.keep}" for c in found.clusters for m in c.members if m.match != "keep"}
            when = self.clock()
            moved = await anyio.to_thread.run_sync(lambda: self._quarantine(root, moves, when))
            result = answer(moved)
        return result, pictures

    async def set_aside(self, root: Path, files: list[str]) -> QuarantineResult:
        """Move the files the artist named (and their captions) into quarantine."""
        when = self.clock()
        moves = dict.fromkeys(files, "set aside by the artist")
        return await anyio.to_thread.run_sync(lambda: self._quarantine(root, moves, when))

    async def undo(self, root: Path, batch: str | None, files: list[str] | None = None) -> QuarantineResult:
        """Put files back from quarantine: the ones named, else a batch (default: the latest)."""
        return await anyio.to_thread.run_sync(
            lambda: undo_quarantine(root, batch=batch, files=files, wait_seconds=self.busy_wait_seconds)
        )

    def _quarantine(self, root: Path, files: dict[str, str], when: datetime) -> QuarantineResult:
        return quarantine_files(root, files, when=when, roots=self.roots, wait_seconds=self.busy_wait_seconds)

    async def review(
        self,
        root: Path,
        *,
        start: int,
        count: int,
        only_missing: bool,
        trigger_word: str | None,
        budget: int,
        include_guide: bool = False,
    ) -> tuple[CaptionReview, list[bytes]]:
        """A batch of previews with their captions (and the captioning guide with the first batch, or if asked)."""
        return await anyio.to_thread.run_sync(
            lambda: review_batch(
                root,
                start=start,
                count=count,
                only_missing=only_missing,
                trigger_word=trigger_word,
                max_side=512,
                budget=budget,
                include_guide=include_guide,
                roots=self.roots,
            )
        )

    async def write(self, root: Path, writes: list[CaptionWrite], trigger_word: str | None) -> CaptionWriteResult:
        """Save captions safely."""
        return await anyio.to_thread.run_sync(
            lambda: write_captions(root, writes, trigger_word=trigger_word, roots=self.roots)
        )

    async def summary(self, root: Path, trigger_word: str | None) -> CaptionSummary:
        """Tag frequency and outliers."""
        return await anyio.to_thread.run_sync(
            lambda: summarise_captions(root, trigger_word=trigger_word, roots=self.roots)
        )

    async def structure(
        self,
        output: Path,
        concepts: list[Concept],
        *,
        target_steps: int = 1500,
        epochs: int = 10,
        protected: Sequence[Protected] = (),
        repeats_for: Callable[[int], int] | None = None,
    ) -> StructureResult:
        """Kohya folders from flat ones (never in a ``protected`` folder; repeats: ``repeats_for(images)``, else
        from target steps and epochs)."""
        when = self.clock()
        return await anyio.to_thread.run_sync(
            lambda: build_structure(
                output,
                concepts,
                target_steps=target_steps,
                epochs=epochs,
                when=when,
                roots=self.roots,
                protected=protected,
                repeats_for=repeats_for,
            )
        )
