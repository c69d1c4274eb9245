"""Invisible characters in text a user or model sends: dropped before storing, made visible in error echoes.

Control characters and bidirectional overrides (U+202E and friends) render nothing, or reverse the rest of
the line, in eye.md, studio.md and the answers Claude shows: a stored name must read as it will match.
"""

from __future__ import annotations

import re

__all__ = ["show_invisible", "strip_invisible"]

# C0/C1 controls except tab and newline, bidi embeddings/overrides/isolates and marks, the BOM.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def strip_invisible(text: str) -> str:
    """``text`` without control characters and bidi overrides."""
    return _INVISIBLE.sub("", text)


def show_invisible(text: str) -> str:
    """``text`` with those characters written out (``\\u202e``), so an echo cannot hide or reverse anything."""
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)
