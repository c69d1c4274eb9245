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
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread

from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.scan import FileEntry

if TYPE_CHECKING:
    from ategnatos_mcp.dataset.probe import ProbeRecord

__all__ = ["Progress", "ProbeRunner"]

Progress = Callable[[float, float | None, str | None], Awaitable[None]]

_CHUNK = 8
_IN_PROCESS_BELOW = 24  # fewer files than this are probed in a thread: starting workers costs more
_FLUSH_EVERY = 400
_PROGRESS_EVERY = 0.25  # seconds between progress notifications (one per chunk flooded the client)


class ProbeRunner:
    """Owns the worker pool (started on first need, closed by ``close``)."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
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

        if len(missing) < _IN_PROCESS_BELOW or self.workers == 1:
            from ategnatos_mcp.dataset.probe import probe_files

            for chunk in chunks:
                results = await anyio.to_thread.run_sync(probe_files, [str(e.path) for e in chunk])
                await on_chunk(chunk, results)
        else:
            stop = threading.Event()
            try:
                # Abandoned on cancel so a dropped call or a server shutdown doesn't wait for every chunk.
                await anyio.to_thread.run_sync(self._drive_pool, chunks, on_chunk, stop, abandon_on_cancel=True)
            except anyio.get_cancelled_exc_class():
                stop.set()
                raise
        await anyio.to_thread.run_sync(cache.store, pending)

    def _drive_pool(
        self,
        chunks: list[list[FileEntry]],
        on_chunk: Callable[[list[FileEntry], list[ProbeRecord]], Coroutine[Any, Any, None]],
        stop: threading.Event,
    ) -> None:
        from ategnatos_mcp.dataset.probe import probe_files

        pool = self._executor()
        futures: dict[Future[list[ProbeRecord]], list[FileEntry]] = {
            pool.submit(probe_files, [str(e.path) for e in chunk]): chunk for chunk in chunks
        }
        try:
            for future in as_completed(futures):
                if stop.is_set():
                    break
                anyio.from_thread.run(on_chunk, futures[future], future.result())
        finally:
            for future in futures:
                future.cancel()


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
