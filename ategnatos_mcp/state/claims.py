"""Claims: an action that must happen once (start a run, rent from a quote, set up a host) is done by one
conversation at a time, across server processes.

An artist often has two conversations open on one project (Claude Desktop and Claude Code): two server processes,
where an in-process lock sees only its own calls. A claim is an ``flock`` on a small file. The OS lets go of it
when its holder ends, even by a kill, so a claim never outlives the server that took it and never needs cleaning
up. While held, the file says what is under way and since when, so the other conversation's answer can say so.

A claim only keeps two callers apart: the caller re-reads the state under it (is the run already started? the
quote already used?) before acting, and records what it did before letting go.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread

from ategnatos_mcp.errors import AtegnatosError

__all__ = ["Holder", "claim", "claimed", "hold", "hold_folder", "holding"]

_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Holder:
    """Who holds a claim: what they are doing and since when (None when the note could not be read)."""

    what: str = ""
    since: datetime | None = None
    pid: int | None = None

    @property
    def since_text(self) -> str:
        """' since 10:42 UTC', or '' when unknown."""
        return f" since {self.since.astimezone(UTC):%H:%M} UTC" if self.since is not None else ""


Refusal = Callable[[Holder], AtegnatosError]


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_NOFOLLOW: a link planted where the claim file goes is never written through.
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _read_note(fd: int) -> Holder:
    try:
        raw = os.pread(fd, 4096, 0)
        note = json.loads(raw.decode("utf-8"))
        since = datetime.fromisoformat(note["since"]) if note.get("since") else None
        return Holder(what=str(note.get("what", "")), since=since, pid=note.get("pid"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Holder()  # being written right now, or from another version: only "someone" is known


def _write_note(fd: int, what: str, now: datetime) -> None:
    note = json.dumps({"what": what, "since": now.isoformat(), "pid": os.getpid()}).encode("utf-8")
    with contextlib.suppress(OSError):  # the note only informs; the lock is what counts
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)


def _acquire_once(path: Path, what: str, now: datetime) -> tuple[int | None, Holder]:
    """The locked fd (note written), or None and who holds it."""
    fd = _open(path)
    try:
        if _try_lock(fd):
            _write_note(fd, what, now)
            return fd, Holder()
        holder = _read_note(fd)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None, holder


def _release(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing lets go of the flock


@asynccontextmanager
async def claim(
    path: Path, what: str, *, now: datetime, refuse: Refusal, wait_seconds: float = 0.0
) -> AsyncGenerator[None]:
    """Hold the claim at ``path`` for the block, doing ``what`` (said to anyone who finds it held).

    Waits at most ``wait_seconds`` for another holder to let go (0: not at all).

    Raises:
        AtegnatosError: ``refuse(holder)`` when another conversation holds it (a ``BusyError`` as a rule).
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        fd, holder = await anyio.to_thread.run_sync(_acquire_once, path, what, now)
        if fd is not None:
            break
        if time.monotonic() >= deadline:
            raise refuse(holder)
        await anyio.sleep(_POLL_SECONDS)
    try:
        yield
    finally:
        _release(fd)


@contextlib.contextmanager
def hold(path: Path, what: str, *, now: datetime, refuse: Refusal, wait_seconds: float = 0.0) -> Generator[None]:
    """``claim`` for blocking code (a worker thread)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        fd, holder = _acquire_once(path, what, now)
        if fd is not None:
            break
        if time.monotonic() >= deadline:
            raise refuse(holder)
        time.sleep(_POLL_SECONDS)
    try:
        yield
    finally:
        _release(fd)


@contextlib.contextmanager
def hold_folder(folder: Path, *, refuse: Callable[[], AtegnatosError], wait_seconds: float = 0.0) -> Generator[None]:
    """Hold an artist's ``folder`` for the block: an ``flock`` on the folder itself, so nothing is written into it
    (a dataset moving files into quarantine, a layout being built). For blocking code (a worker thread).

    Raises:
        AtegnatosError: ``refuse()`` when another conversation holds it past ``wait_seconds``.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + wait_seconds
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise refuse()
            time.sleep(_POLL_SECONDS)
        yield
    finally:
        os.close(fd)


def holding(path: Path) -> Holder | None:
    """Who holds the claim at ``path`` right now, or None when nobody does."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if _try_lock(fd):
            return None
        return _read_note(fd)
    finally:
        os.close(fd)


def claimed(folder: Path, key: str) -> Path:
    """Where the claim ``key`` of a project lives (under its grimoire's ``.state/claims/``)."""
    return folder / "claims" / f"{key}.claim"
