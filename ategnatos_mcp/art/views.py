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
    """Write ``text`` to ``path``; returns the new hash and a notice when a hand-edited copy was kept aside.

    A file whose bytes no longer match ``last_hash`` was edited since we rendered it: it is kept beside the
    new render as ``<name>.edited-<stamp>.md`` so nothing the artist typed is lost.
    """
    notice = None
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current is not None and current != text and last_hash is not None and sha256(current) != last_hash:
        kept = keep_copy(path, current.encode("utf-8"), "edited", now)  # never over an earlier copy
        notice = (
            f"{path.name} had been edited by hand; your copy is kept as {kept.name} and {path.name} was "
            "rendered fresh from the log. Make changes through the art tools so they stick."
        )
    if current != text:
        write_text_atomic(path, text)
    return sha256(text), notice
