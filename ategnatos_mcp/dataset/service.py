"""DatasetService: one object per server that the tools call; it owns the probe cache and worker pool."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import anyio.to_thread

from ategnatos_mcp.dataset.audit import AuditOptions, audit_loaded, unreadable_files
from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.captioning import review_batch, summarise_captions, write_captions
from ategnatos_mcp.dataset.jobs import ProbeJobs, Spawner, StillReading
from ategnatos_mcp.dataset.models import (
    AuditResult,
    CaptionReview,
    CaptionSummary,
    CaptionWrite,
    CaptionWriteResult,
    DedupeResult,
    DuplicateFile,
    DuplicateGroup,
    StructureResult,
)
from ategnatos_mcp.dataset.quarantine import quarantine_files, undo_quarantine
from ategnatos_mcp.dataset.runner import ProbeRunner, Progress
from ategnatos_mcp.dataset.structure import Concept, build_structure

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
        spawn: Spawner | None = None,
        wait_seconds: float | None = None,
    ) -> None:
        """``spawn`` starts a background task that outlives the call; without it, calls wait until done."""
        from ategnatos_mcp.dataset.probe import PROBE_VERSION

        self.cache = ProbeCache(cache_dir / CACHE_FILE, version=PROBE_VERSION)
        self.runner = ProbeRunner(workers)
        self.jobs = ProbeJobs(self.cache, self.runner, spawn)
        self.threshold = threshold
        self.clock = clock
        self.wait_seconds = wait_seconds

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
            return await audit_loaded(root, loaded, options)
        when = self.clock()
        moved = await anyio.to_thread.run_sync(lambda: quarantine_files(root, broken, when=when))
        # The verdict must describe the folder as it is now: read it again (every image is cached).
        loaded = await self.jobs.load(root, wait_seconds=None, progress=None)
        result = await audit_loaded(root, loaded, options)
        result.quarantine = moved
        return result

    async def dedupe(
        self,
        root: Path,
        *,
        threshold: int | None,
        mirror: bool,
        quarantine: bool,
        groups_shown: int,
        progress: Progress | None = None,
        wait_seconds: float | None = None,
    ) -> DedupeResult:
        """Duplicate groups; with ``quarantine`` the extras (and their captions) move to ``quarantine/``."""
        from ategnatos_mcp.dataset.dedupe import find_duplicates

        limit = self.threshold if threshold is None else threshold
        try:
            loaded = await self.jobs.load(
                root, wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds, progress=progress
            )
        except StillReading as busy:
            return DedupeResult(dataset=str(root), complete=False, images_read=busy.done, images_checked=0)
        records = loaded.records
        clusters = await anyio.to_thread.run_sync(lambda: find_duplicates(records, threshold=limit, mirror=mirror))
        groups = [
            DuplicateGroup(
                keep=c.keep,
                reason=c.reason,
                files=[
                    DuplicateFile(
                        path=m.rel,
                        match=m.match,  # type: ignore[arg-type]
                        similarity=m.similarity,
                        width=records[m.rel].display_width,
                        height=records[m.rel].display_height,
                        format=records[m.rel].format,
                        bytes=records[m.rel].size,
                    )
                    for m in c.members
                ],
            )
            for c in clusters
        ]
        exact = sum(1 for g in groups if all(f.match in ("keep", "identical") for f in g.files))
        result = DedupeResult(
            dataset=str(root),
            images_checked=sum(1 for r in records.values() if r.ok),
            threshold=limit,
            mirror_aware=mirror,
            exact_groups=exact,
            near_groups=len(groups) - exact,
            extra_files=sum(len(c.extras) for c in clusters),
            groups=groups[:groups_shown],
            groups_shown=min(groups_shown, len(groups)),
        )
        if quarantine and clusters:
            moves = {
                rel: f"duplicate of {c.keep} ({m.match}, similarity {m.similarity:.2f})"
                for c in clusters
                for m in c.members
                for rel in [m.rel]
                if m.match != "keep"
            }
            when = self.clock()
            result.quarantine = await anyio.to_thread.run_sync(lambda: quarantine_files(root, moves, when=when))
        return result

    async def undo(self, root: Path, batch: str | None) -> DedupeResult:
        """Put a quarantine batch back."""
        moved = await anyio.to_thread.run_sync(lambda: undo_quarantine(root, batch=batch))
        return DedupeResult(dataset=str(root), threshold=self.threshold, quarantine=moved)

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
            )
        )

    async def write(self, root: Path, writes: list[CaptionWrite], trigger_word: str | None) -> CaptionWriteResult:
        """Save captions safely."""
        return await anyio.to_thread.run_sync(lambda: write_captions(root, writes, trigger_word=trigger_word))

    async def summary(self, root: Path, trigger_word: str | None) -> CaptionSummary:
        """Tag frequency and outliers."""
        return await anyio.to_thread.run_sync(lambda: summarise_captions(root, trigger_word=trigger_word))

    async def structure(
        self,
        output: Path,
        concepts: list[Concept],
        *,
        target_steps: int = 1500,
        epochs: int = 10,
        repeats_for: Callable[[int], int] | None = None,
    ) -> StructureResult:
        """Kohya folders from flat ones (repeats: ``repeats_for(images)``, else from target steps and epochs)."""
        when = self.clock()
        return await anyio.to_thread.run_sync(
            lambda: build_structure(
                output, concepts, target_steps=target_steps, epochs=epochs, when=when, repeats_for=repeats_for
            )
        )
