"""A persistent probe cache: one SQLite file under ``settings.cache_dir``, keyed by path, size and mtime.

An unchanged file is never decoded twice, so re-auditing an unchanged dataset costs one folder walk
and one query. A record made by an older probe version is ignored (and replaced on the next probe).
The same file keeps the duplicate proofs (``verify.py``), keyed by the two files' contents: a pair is
proven once, whatever is renamed, moved or re-audited later.
"""

from __future__ import annotations

import marshal
import os.path
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ategnatos_mcp.dataset.scan import FileEntry

__all__ = ["ProbeCache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS probe (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    version INTEGER NOT NULL,
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS proof (
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    mirrored INTEGER NOT NULL,
    version INTEGER NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (a, b, mirrored)
)
"""
_IN_CHUNK = 500  # sqlite's limit on bound parameters is 999 in older builds


class ProbeCache:
    """Probe records (plain tuples, stored with ``marshal``: no code runs on load) by absolute path.

    Blocking: call it from a worker thread.
    """

    def __init__(self, path: Path, *, version: int) -> None:
        self.path = path
        self.version = version

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            conn.close()
            # A damaged cache is only a cache: start a new one.
            self.path.unlink(missing_ok=True)
            conn = sqlite3.connect(self.path, timeout=30)
            conn.executescript(_SCHEMA)
        return conn

    def lookup(self, entries: Sequence[FileEntry]) -> dict[str, tuple[object, ...]]:
        """Records still valid for these files, by ``FileEntry.rel``."""
        if not entries:
            return {}
        wanted = {str(e.path): e for e in entries}
        found: dict[str, tuple[object, ...]] = {}
        conn = self._connect()
        try:
            root = _common_prefix(wanted)
            rows = conn.execute(
                "SELECT path, size, mtime_ns, record FROM probe WHERE version = ? AND path >= ? AND path < ?",
                (self.version, root, root + "\U0010ffff"),
            )
            for path, size, mtime_ns, blob in rows:
                entry = wanted.get(path)
                if entry is not None and entry.size == size and entry.mtime_ns == mtime_ns:
                    found[entry.rel] = marshal.loads(blob)
        finally:
            conn.close()
        return found

    def store(self, items: Iterable[tuple[FileEntry, tuple[object, ...]]]) -> None:
        """Save fresh records (replacing older ones for the same path)."""
        rows = [(str(e.path), e.size, e.mtime_ns, self.version, _dump(rec)) for e, rec in items]
        if not rows:
            return
        conn = self._connect()
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO probe VALUES (?, ?, ?, ?, ?)", rows)
        finally:
            conn.close()

    def proofs(self, shas: Iterable[str], *, version: int) -> dict[tuple[str, str, bool], float]:
        """Stored proofs (see ``verify.worst_patch``) of pairs whose first file has one of these contents."""
        wanted = sorted(set(shas))
        found: dict[tuple[str, str, bool], float] = {}
        conn = self._connect()
        try:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                rows = conn.execute(
                    f"SELECT a, b, mirrored, score FROM proof WHERE version = ? AND a IN ({','.join('?' * len(chunk))})",
                    (version, *chunk),
                )
                found.update({(a, b, bool(m)): score for a, b, m, score in rows})
        finally:
            conn.close()
        return found

    def store_proofs(self, proofs: Mapping[tuple[str, str, bool], float], *, version: int) -> None:
        """Keep new proofs for later runs."""
        rows = [(a, b, int(m), version, float(score)) for (a, b, m), score in proofs.items()]
        if not rows:
            return
        conn = self._connect()
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO proof VALUES (?, ?, ?, ?, ?)", rows)
        finally:
            conn.close()


def _dump(values: tuple[object, ...]) -> bytes:
    return marshal.dumps(values)  # pyright: ignore[reportArgumentType]  # ints, str, bytes, bool, None only


def _common_prefix(paths: Iterable[str]) -> str:
    return os.path.commonpath(list(paths))
