"""Markdown rendered from state, written without ever silently overwriting a hand edit (blocking: use a thread).

The eye and the studio inventory parse their views back (``View``); other renderings (an asset's iterations, a
library entry, a training run's records) are write-only pages. Both kinds keep what the artist typed: an edited page,
or one that was there before we wrote any, is kept beside the new render.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from ategnatos_mcp.state.atomic import keep_copy, write_text_atomic

__all__ = ["Rendered", "text_hash", "write_rendered"]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Rendered(NamedTuple):
    """What writing a rendered page did: its new hash, and where the artist's copy was kept (None when none was)."""

    hash: str
    kept: Path | None = None
    hand_kept: bool = False  # the page was there before we ever wrote it (not an edit of our render)


def write_rendered(path: Path, text: str, last_hash: str | None, now: datetime) -> Rendered:
    """Write ``text`` to ``path``, keeping what the artist made there.

    A page whose bytes no longer match the hash of our last render was edited: that copy is kept as
    ``<name>.edited-<stamp>.md``. A page there before we ever wrote it (``last_hash`` None: kept by hand, e.g. with
    the markdown version of Ategnatos) is kept as ``<name>.backup-<stamp>.md``. Copies never replace earlier ones.
    """
    try:
        raw: bytes | None = path.read_bytes()
    except FileNotFoundError:
        raw = None
    current = None if raw is None else raw.decode("utf-8", errors="replace")
    kept: Path | None = None
    hand_kept = False
    if raw is not None and current != text:
        if last_hash is None:
            kept, hand_kept = keep_copy(path, raw, "backup", now), True
        elif text_hash(current or "") != last_hash:
            kept = keep_copy(path, raw, "edited", now)
    if current != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    return Rendered(text_hash(text), kept, hand_kept)
