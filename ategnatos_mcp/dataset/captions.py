"""Caption files: read, normalise, write safely, trigger word first, token estimate, tag statistics.

Kohya reads only the first line of a caption and, with ``keep_tokens=1``, keeps the first
comma-separated tag in place while shuffling the rest: so a caption is one line and the trigger
word is its first tag.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ategnatos_mcp.dataset.scan import CAPTION_EXTENSIONS, DatasetScan, FileEntry

__all__ = [
    "CLIP_TOKEN_LIMIT",
    "MAX_CAPTION_CHARS",
    "CaptionRefused",
    "caption_files_by_stem",
    "estimate_tokens",
    "normalise_caption",
    "read_caption",
    "split_tags",
    "tag_counts",
]

CLIP_TOKEN_LIMIT = 75  # CLIP's 77 minus the start and end tokens
MAX_CAPTION_CHARS = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
# Close to CLIP's pre-tokeniser: words, single digits, runs of punctuation.
_CLIP_PIECES = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+", re.UNICODE)


class CaptionRefused(ValueError):
    """A caption that cannot be written; the message says why in plain words."""


def read_caption(path: Path) -> str:
    """The caption's text (BOM and odd bytes tolerated)."""
    return path.read_bytes().decode("utf-8-sig", errors="replace")


def split_tags(text: str) -> list[str]:
    """Comma-separated parts, trimmed, empties dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def normalise_caption(text: str, *, trigger_word: str | None = None) -> str:
    """One clean line: NFC, no control characters, single spaces, ', ' between tags, no repeats.

    With ``trigger_word`` the trigger becomes the first tag (moved there if it was elsewhere).

    Raises:
        CaptionRefused: the caption is empty, too long, or not valid text.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CaptionRefused("the caption contains characters that cannot be saved as text") from exc
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    # Kohya reads the first line only: later lines become more tags instead of being lost.
    text = ", ".join(line for line in text.split("\n") if line.strip())
    text = _SPACES.sub(" ", text).replace(" ,", ",")
    tags: list[str] = []
    seen: set[str] = set()
    for tag in split_tags(text):
        key = tag.casefold()
        if key not in seen:
            seen.add(key)
            tags.append(tag)
    if trigger_word:
        trigger = _SPACES.sub(" ", trigger_word.strip())
        tags = [trigger] + [t for t in tags if t.casefold() != trigger.casefold()]
    result = ", ".join(tags)
    if not result or result == (trigger_word or "").strip():
        raise CaptionRefused("the caption is empty: describe the picture's content and style")
    if len(result) > MAX_CAPTION_CHARS:
        raise CaptionRefused(f"the caption is {len(result)} characters long; keep it under {MAX_CAPTION_CHARS}")
    return result


def estimate_tokens(text: str) -> int:
    """An estimate of CLIP tokens: one per word piece, plus one per 8 letters beyond the first 8 of a long word."""
    count = 0
    for piece in _CLIP_PIECES.findall(text):
        count += 1 + max(0, len(piece) - 8) // 8 if piece[0].isalpha() else 1
    return count


def caption_files_by_stem(scan: DatasetScan) -> dict[str, FileEntry]:
    """Caption file for each stem; ``.txt`` wins over ``.caption`` when both exist."""
    found: dict[str, FileEntry] = {}
    for ext in reversed(CAPTION_EXTENSIONS):
        for entry in scan.captions:
            if entry.rel.lower().endswith(ext):
                found[entry.stem_key] = entry
    return found


def tag_counts(captions: Iterable[str]) -> Counter[str]:
    """How many captions use each tag (case-insensitive)."""
    counts: Counter[str] = Counter()
    for text in captions:
        counts.update({t.casefold() for t in split_tags(text)})
    return counts
