"""Markdown rendered from state, written without ever silently overwriting a hand edit (blocking: use a thread).

The eye and the studio inventory parse their views back (``View``); other renderings (an asset's iterations, a
library entry, a training run's records) are write-only pages. Both kinds keep what the artist typed: a page whose
bytes no longer match the hash of our last render was edited, and that copy is kept beside the new render.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from ategnatos_mcp.state.atomic import keep_copy, write_text_atomic

__all__ = ["text_hash", "write_rendered"]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_rendered(path: Path, text: str, last_hash: str | None, now: datetime) -> tuple[str, Path | None]:
    """Write ``text`` to ``path``; returns its hash and where a hand-edited copy was kept (None when none was).

    The edited copy is named ``<name>.edited-<stamp>.md`` and never replaces an earlier copy.
    """
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    kept = None
    if current is not None and current != text and last_hash is not None and text_hash(current) != last_hash:
        kept = keep_copy(path, current.encode("utf-8"), "edited", now)
    if current != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    return text_hash(text), kept
