"""Atomic file writes: a crash leaves the old file or the new one, never a torn one.

Temp files carry a name only we use (``.<name>.<random>.ategnatos.tmp``) and stay locked (``flock``) until they are
renamed into place, so a sweep can tell a leftover of a killed write from a file someone else made, or from a write
still under way in another server process: the lock decides, whatever the file's age. Copies kept beside a file
never replace an earlier copy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Generator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "copy_file_atomic",
    "copy_name",
    "keep_copy",
    "preserve",
    "is_temp_name",
    "remove_if_abandoned",
    "remove_leftover_temp_files",
    "temp_beside",
    "tidy_folder",
    "write_bytes_atomic",
    "write_text_atomic",
]

logger = logging.getLogger("ategnatos_mcp.state")

_TEMP_SUFFIX = ".ategnatos.tmp"
LEGACY_LEFTOVER_AGE_SECONDS = 3600.0  # a pre-marker temp file in .state this old was left by a killed write
# mkstemp's random part: 8 characters of [a-z0-9_].
_OURS = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(_TEMP_SUFFIX) + "$")
# What versions before the marker wrote; only trusted inside a `.state` folder, which only we write to.
_OURS_BEFORE_MARKER = re.compile(r"^\..+\.(json|md|sha256)\.[a-z0-9_]{8}\.tmp$")


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, then rename.

    ``mode``: the file's permissions, set before the rename so the file never shows up with others. By default
    a rewritten file keeps the permissions it had (an artist's 0664 stays 0664), and a new one gets 0600.
    ``fsync=False``: for files that can be made again (a picture ComfyUI still holds), where speed matters more.
    """
    if mode is None:
        mode = _mode_of(path)
    with temp_beside(path, mode=mode) as (fh, tmp):
        fh.write(data)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


def copy_file_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` (fsynced) so that ``target`` is whole or not there: never a torn copy, and a
    copy cut short by a kill leaves only a temp file the next sweep removes."""
    with source.open("rb") as src, temp_beside(target, mode=_mode_of(source)) as (fh, tmp):
        shutil.copyfileobj(src, fh, 1024 * 1024)
        fh.flush()
        os.fsync(fh.fileno())
        os.replace(tmp, target)
    _fsync_dir(target.parent)


@contextlib.contextmanager
def temp_beside(path: Path, *, mode: int | None = None) -> Generator[tuple[BinaryIO, Path]]:
    """A new temp file beside ``path``, named and locked as our sweeps recognise: ``.<name>.<random>.ategnatos.tmp``,
    ``flock``-ed until the block ends. The block writes it and renames (or links) it into place; whatever is still
    at the temp name afterwards is removed, also when the block raises.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMP_SUFFIX, dir=path.parent)
        tmp = Path(name)
        try:
            # Held until the file is closed: the leftover sweep never touches a temp file someone is writing.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink == 0:
                # A sweep took it between its creation and our lock (it was not locked yet): take another.
                os.close(fd)
                continue
        except BaseException:
            os.close(fd)
            raise
        try:
            with os.fdopen(fd, "wb") as fh:
                if mode is not None:
                    os.fchmod(fh.fileno(), mode)
                yield fh, tmp
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return
    raise OSError(errno.EAGAIN, f"no temp file beside {path.name} could be kept")


def write_text_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write UTF-8 text atomically (``mode`` as in ``write_bytes_atomic``)."""
    write_bytes_atomic(path, text.encode("utf-8"), mode=mode)


def copy_name(path: Path, label: str, now: datetime, n: int = 1) -> Path:
    """``eye.md`` -> ``eye.<label>-20261205-011600.md`` (``-2``, ``-3``... for later copies in the same second)."""
    stamp = now.strftime("%Y%m%d-%H%M%S") + (f"-{n}" if n > 1 else "")
    return path.with_name(f"{path.stem}.{label}-{stamp}{path.suffix}")


def keep_copy(path: Path, data: bytes, label: str, now: datetime) -> Path:
    """Save ``data`` beside ``path`` under a dated name that no existing file has; returns the copy's path.

    The copy is created exclusively (``O_EXCL``), so it can never replace an earlier copy, even one made by
    another process in the same second.
    """
    return _exclusive_copy(path, label, now, lambda fh: fh.write(data))


def preserve(path: Path, label: str, now: datetime) -> Path:
    """Keep the file at ``path`` as it is now under a dated name beside it (before it is rewritten)."""
    with path.open("rb") as source:
        return _exclusive_copy(path, label, now, lambda fh: shutil.copyfileobj(source, fh))


def _mode_of(path: Path) -> int | None:
    """The permission bits of the regular file at ``path``, or None."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None


def _exclusive_copy(path: Path, label: str, now: datetime, fill: Callable[[BinaryIO], object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_of(path)  # as private as the file it keeps: an artist's 0600 eye.md gives a 0600 copy
    for n in range(1, 10_000):
        candidate = copy_name(path, label, now, n)
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(path.parent)
        return candidate
    raise OSError(errno.EEXIST, f"no free name for a copy of {path.name}")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is how our atomic writes name their temp files (``.<name>.<random>.ategnatos.tmp``)."""
    return _OURS.match(name) is not None


def remove_leftover_temp_files(
    root: Path,
    *,
    older_than_seconds: float = 0.0,
    legacy_older_than_seconds: float = LEGACY_LEFTOVER_AGE_SECONDS,
    recursive: bool = True,
) -> list[Path]:
    """Delete temp files our atomic writes left behind when a process was killed; returns what was removed.

    Only files named as we name them and not locked by a writer (every writer of that name holds an ``flock``
    until its rename, in any server process), not modified for ``older_than_seconds``; files named as versions
    before the marker wrote them only inside a ``.state`` folder, and only after ``legacy_older_than_seconds``
    (those writers held no lock). Symlinks are neither followed nor removed. ``recursive=False``: ``root`` itself.
    """
    removed: list[Path] = []
    now = time.time()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if recursive and not os.path.islink(os.path.join(folder, d))]
        in_state = os.path.basename(folder) == ".state"
        for name in files:
            if _OURS.match(name):
                cutoff = now - older_than_seconds
            elif in_state and _OURS_BEFORE_MARKER.match(name):
                cutoff = now - legacy_older_than_seconds
            else:
                continue
            path = Path(folder) / name
            if _remove_if_abandoned(path, cutoff):
                removed.append(path)
    return removed


def tidy_folder(folder: Path) -> list[Path]:
    """``remove_leftover_temp_files`` for housekeeping: each removal logged, a folder that cannot be walked only
    logged (never raises)."""
    try:
        removed = remove_leftover_temp_files(folder)
    except OSError:
        logger.exception("tidying %s failed", folder)
        return []
    for path in removed:
        logger.info("removed %s, left by a write that was killed", path)
    return removed


def remove_if_abandoned(path: Path) -> bool:
    """Remove ``path`` if it is one of our temp files that no writer holds (see ``remove_leftover_temp_files``)."""
    return is_temp_name(path.name) and _remove_if_abandoned(path, time.time())


def _remove_if_abandoned(path: Path, cutoff: float) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # gone already, or a symlink
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_mtime > cutoff:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer holds it
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk too.
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
