"""Probe many files: cached records first, the rest decoded over worker processes, in small chunks.

Memory stays bounded: a worker holds one image at a time and sends back only a small record.
Records are written to the cache as they arrive, so a run that is cut off resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread

from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.scan import FileEntry
from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.progress import Progress

if TYPE_CHECKING:
    from ategnatos_mcp.dataset.probe import ProbeRecord

__all__ = ["CRASHED_DETAIL", "ProbeRunner"]

_OnChunk = Callable[[list[FileEntry], list["ProbeRecord"]], Coroutine[Any, Any, None]]

_CHUNK = 8
_MAX_BREAKS = 3  # pool breaks no single file explains, tolerated in one read before giving up
CRASHED_DETAIL = "reading it made the image decoder stop: the file is damaged, or built to attack image software"
_FLUSH_EVERY = 400
_PROGRESS_EVERY = 0.25  # seconds between progress notifications (one per chunk flooded the client)


class ProbeRunner:
    """Owns the worker pool (started on first need, closed by ``close``)."""

    def __init__(self, workers: int = 0, probe_fn: Callable[[list[str]], list[ProbeRecord]] | None = None) -> None:
        """``probe_fn``: what a worker runs on a chunk of paths (tests only; a module-level function)."""
        self.workers = workers or os.cpu_count() or 1
        self.probe_fn = probe_fn
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=_worker_context())
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    async def probe(
        self, entries: Sequence[FileEntry], cache: ProbeCache, progress: Progress | None = None
    ) -> tuple[dict[str, ProbeRecord], int]:
        """A record per file (by ``rel``), from the cache when the file is unchanged; and how many were decoded."""
        from ategnatos_mcp.dataset.probe import ProbeRecord

        cached = await anyio.to_thread.run_sync(cache.lookup, entries)
        records = {rel: ProbeRecord(*values) for rel, values in cached.items()}  # type: ignore[arg-type]
        missing = [e for e in entries if e.rel not in records]
        total = len(entries)
        if progress is not None:
            await progress(len(records), total, f"{len(records)} of {total} images already known")
        if missing:
            await self._probe_missing(missing, records, cache, progress, total)
        return records, len(missing)

    async def _probe_missing(
        self,
        missing: list[FileEntry],
        records: dict[str, ProbeRecord],
        cache: ProbeCache,
        progress: Progress | None,
        total: int,
    ) -> None:
        chunks = [missing[i : i + _CHUNK] for i in range(0, len(missing), _CHUNK)]
        pending: list[tuple[FileEntry, tuple[object, ...]]] = []
        last_progress = [0.0]

        async def on_chunk(chunk: list[FileEntry], results: list[ProbeRecord]) -> None:
            for entry, record in zip(chunk, results, strict=True):
                records[entry.rel] = record
                if record.error != "unreadable":  # a permission fix leaves size and mtime alone: ask again next time
                    pending.append((entry, _as_tuple(record)))
            if len(pending) >= _FLUSH_EVERY:
                batch = pending[:]
                pending.clear()
                await anyio.to_thread.run_sync(cache.store, batch)
            now = time.monotonic()
            if progress is not None and (now - last_progress[0] >= _PROGRESS_EVERY or len(records) == total):
                last_progress[0] = now
                await progress(len(records), total, f"read {len(records)} of {total} images")

        stop = threading.Event()
        try:
            # Abandoned on cancel so a dropped call or a server shutdown doesn't wait for every chunk.
            await anyio.to_thread.run_sync(self._drive_pool, chunks, on_chunk, stop, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            stop.set()
            raise
        await anyio.to_thread.run_sync(cache.store, pending)

    def _drive_pool(self, chunks: list[list[FileEntry]], on_chunk: _OnChunk, stop: threading.Event) -> None:
        """Every chunk probed in the worker processes, even when a file makes a decoder crash.

        Decoders are C code: a damaged or hostile file can kill the process reading it, and with it the pool.
        Then the chunks that were in flight are read again one file at a time in a new pool, which finds the
        file that kills it; that file is reported as damaged and the rest goes on as before.
        """
        remaining, unexplained = chunks, 0
        while remaining and not stop.is_set():
            remaining = self._round(remaining, on_chunk, stop)
            if not remaining or stop.is_set():
                return
            self._discard_pool()
            in_flight = self.workers + 2  # the executor hands out at most workers + 1 calls before they finish
            if not self._isolate([e for chunk in remaining[:in_flight] for e in chunk], on_chunk, stop):
                unexplained += 1  # e.g. a worker killed from outside: try again, but not forever
                if unexplained > _MAX_BREAKS:
                    raise UpstreamError(
                        "The image readers kept stopping while reading this dataset.",
                        service="image decoder",
                        hint="Check that the computer has free memory, then run the audit again; files already "
                        "read are kept.",
                    )
            remaining = remaining[in_flight:]

    def _isolate(self, suspects: list[FileEntry], on_chunk: _OnChunk, stop: threading.Event) -> bool:
        """Read ``suspects`` one at a time; a file that breaks the pool is reported as damaged. Found any?"""
        found = False
        for entry in suspects:
            if stop.is_set():
                break
            if self._round([[entry]], on_chunk, stop):
                found = True
                self._discard_pool()
                anyio.from_thread.run(on_chunk, [entry], [_crashed(entry)])
        return found

    def _round(self, chunks: list[list[FileEntry]], on_chunk: _OnChunk, stop: threading.Event) -> list[list[FileEntry]]:
        """Probe ``chunks`` in the pool; the ones left unread if the pool broke (in submission order)."""
        from ategnatos_mcp.dataset.probe import probe_files

        pool = self._executor()
        futures: dict[Future[list[ProbeRecord]], int] = {
            pool.submit(self.probe_fn or probe_files, [str(e.path) for e in chunk]): i for i, chunk in enumerate(chunks)
        }
        done: set[int] = set()
        try:
            for future in as_completed(futures):
                if stop.is_set():
                    break
                try:
                    results = future.result()
                except BrokenProcessPool:
                    return [chunk for i, chunk in enumerate(chunks) if i not in done]
                anyio.from_thread.run(on_chunk, chunks[futures[future]], results)
                done.add(futures[future])
        finally:
            for future in futures:
                future.cancel()
        return []

    def _discard_pool(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _crashed(entry: FileEntry) -> ProbeRecord:
    from ategnatos_mcp.dataset.probe import ProbeRecord

    return ProbeRecord(size=entry.size, sha256="", error="corrupt", error_detail=CRASHED_DETAIL)


def _worker_context() -> BaseContext:
    """How worker processes start. Never a plain fork: the server has threads and an event loop a fork would copy
    mid-flight. A fork server is a clean process that imports the decoder once, so each worker starts ready
    (a spawned one would import numpy, Pillow and the server's own entry point again); spawn where there is none.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", "ategnatos_mcp.dataset.probe"])
    return ctx


def _as_tuple(record: ProbeRecord) -> tuple[object, ...]:
    # The fields are flat values: a shallow tuple (dataclasses.astuple deep-copies every one of them).
    return tuple(getattr(record, f.name) for f in dataclasses.fields(record))
