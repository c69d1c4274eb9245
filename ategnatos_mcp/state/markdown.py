"""Helpers shared by the hand-editable markdown views (``eye.md``, ``studio.md``).

Escaping follows CommonMark: a backslash before a character that means something to our parser makes it plain
text (``\\|`` in a table cell, ``\\[`` in a taste entry), and a markdown viewer shows the character alone.
Exactly: a run of ``k`` backslashes before a special character stands for ``k // 2`` backslashes, and the
character is escaped when ``k`` is odd; backslashes before any other character are literal. So a Windows path
like ``C:\\models`` needs no escaping and every string survives ``escape`` then ``decode`` unchanged.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections import Counter
from collections.abc import Container, Iterable, Mapping
from functools import lru_cache
from typing import TypeVar

__all__ = [
    "KEPT_NOTE",
    "KEPT_TITLE",
    "closest",
    "decode",
    "escape",
    "fold",
    "is_our_comment",
    "join_list",
    "lines_of",
    "minus",
    "plain",
    "render_kept",
    "split_list",
    "split_row",
]

T = TypeVar("T")

KEPT_TITLE = "Kept as written"
KEPT_NOTE = (
    "<!-- Kept exactly as written: lines Ategnatos could not read. Move a line under a heading above, in the format "
    "shown there, to use it; delete it to drop it. -->"
)
_OUR_COMMENTS = ("<!-- Rendered by Ategnatos", "<!-- Kept exactly as written")


def decode(text: str, specials: str) -> list[tuple[str, bool]]:
    """``text`` as (character, escaped) pairs; only characters in ``specials`` can be escaped."""
    out: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] != "\\":
            out.append((text[i], False))
            i += 1
            continue
        j = i
        while j < n and text[j] == "\\":
            j += 1
        run = j - i
        if j < n and text[j] in specials:
            out.extend(("\\", False) for _ in range(run // 2))
            out.append((text[j], run % 2 == 1))
            i = j + 1
        else:
            out.extend(("\\", False) for _ in range(run))
            i = j
    return out


def plain(chars: Iterable[tuple[str, bool]]) -> str:
    return "".join(c for c, _ in chars)


def escape(text: str, specials: str, only_at: Container[int] | None = None, *, closed: bool = False) -> str:
    """The escaped form of ``text``: every special character (or those at ``only_at``) gets a backslash.

    ``closed``: a special character follows ``text`` (a list's separating comma), so trailing backslashes double.
    """
    out: list[str] = []
    pending = 0
    for index, char in enumerate(text):
        if char == "\\":
            pending += 1
            continue
        if char in specials:
            escaped = only_at is None or index in only_at
            out.append("\\" * (2 * pending + (1 if escaped else 0)))
        else:
            out.append("\\" * pending)
        pending = 0
        out.append(char)
    out.append("\\" * (2 * pending if closed else pending))
    return "".join(out)


def split_row(line: str) -> list[str] | None:
    """The raw cells of a markdown table row (``| a | b |``), split on unescaped pipes; None if not a row."""
    text = line.strip()
    if not text.startswith("|"):
        return None
    cells: list[str] = []
    current: list[str] = []
    pending = 0
    ended_with_pipe = False
    for char in text[1:]:
        ended_with_pipe = False
        if char == "|" and pending % 2 == 0:
            cells.append("".join(current).strip())
            current, pending, ended_with_pipe = [], 0, True
            continue
        pending = pending + 1 if char == "\\" else 0
        current.append(char)
    if not ended_with_pipe:
        cells.append("".join(current).strip())
    return cells


def split_list(cell: str) -> list[str]:
    """A comma-separated cell as items (``\\,`` is a comma inside an item); the cell's ``\\|`` are decoded too."""
    items: list[str] = []
    current: list[str] = []
    for char, escaped in decode(cell, ",|"):
        if char == "," and not escaped:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


def join_list(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(escape(item, ",|", closed=n < len(items) - 1) for n, item in enumerate(items))


@lru_cache(maxsize=4096)  # the same few headings, level words and tag words, on every line
def fold(text: str) -> str:
    """A heading or label for matching: case, accents, punctuation and spacing ignored."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = "".join(c if c.isalnum() else " " for c in kept)
    return " ".join(words.split())


def closest(label: str, known: Mapping[str, T], cutoff: float = 0.8) -> tuple[T, bool] | None:
    """The value whose key matches ``label`` (folded), exactly or as a likely typo; and whether it was a guess."""
    key = fold(label)
    if key in known:
        return known[key], False
    guesses = difflib.get_close_matches(key, list(known), n=1, cutoff=cutoff)
    return (known[guesses[0]], True) if guesses and len(key) >= 4 else None


def is_our_comment(stripped: str) -> bool:
    return stripped.startswith(_OUR_COMMENTS)


def lines_of(text: str) -> list[str]:
    """Lines split on newlines only (``str.splitlines`` would also split inside an entry on U+2028 and friends)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff").split("\n")


def render_kept(lines: list[str]) -> str:
    """The closing "Kept as written" section ("" when nothing is kept)."""
    if not lines:
        return ""
    return "\n".join(["", f"## {KEPT_TITLE}", KEPT_NOTE, *lines, ""])


def minus(items: Iterable[str], taken: Iterable[str]) -> list[str]:
    """``items`` without one occurrence of each of ``taken``, order kept (a multiset difference)."""
    left = Counter(taken)
    out: list[str] = []
    for item in items:
        if left[item] > 0:
            left[item] -= 1
        else:
            out.append(item)
    return out
