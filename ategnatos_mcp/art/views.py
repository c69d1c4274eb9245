"""Writing markdown views without silently overwriting a hand edit (blocking: run in a worker thread)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from ategnatos_mcp.state import keep_copy, write_text_atomic

__all__ = ["sha256", "write_view"]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_view(path: Path, text: str, last_hash: str | None, now: datetime) -> tuple[str, str | None]:
    """Write ``text`` to ``path``; returns the new hash and a notice when the artist's copy was kept aside.

    A file whose bytes no longer match ``last_hash`` was edited since we rendered it, and a file there with no
    ``last_hash`` is one we never wrote (kept by hand, e.g. with the markdown version of Ategnatos): either is
    kept beside the new render as ``<name>.edited-<stamp>.md`` / ``<name>.backup-<stamp>.md``, so nothing the
    artist typed is lost.
    """
    notice = None
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = None
    current = None if raw is None else raw.decode("utf-8", errors="replace")
    if raw is not None and current != text:
        if last_hash is None:
            kept = keep_copy(path, raw, "backup", now)  # never over an earlier copy
            notice = (
                f"{path.name} was already there, not written by Ategnatos; your copy is kept as {kept.name} and "
                f"{path.name} now shows the log. Make changes through the art tools so they stick."
            )
        elif sha256(current or "") != last_hash:
            kept = keep_copy(path, raw, "edited", now)
            notice = (
                f"{path.name} had been edited by hand; your copy is kept as {kept.name} and {path.name} was "
                "rendered fresh from the log. Make changes through the art tools so they stick."
            )
    if current != text:
        write_text_atomic(path, text)
    return sha256(text), notice
