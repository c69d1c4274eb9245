"""Prompt terms: reading and writing them in a family's syntax, and keeping NEVER / AVOID phrases out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ategnatos_mcp.art.models import Family, PromptDraft, PromptTerm
from ategnatos_mcp.art.phrases import Removal, cut_phrases, mentions

__all__ = [
    "AVOID_WEIGHT",
    "NEVER_WEIGHT",
    "add_unique",
    "enforce_never",
    "estimate_tokens",
    "has_weight_syntax",
    "keep_out",
    "parse_terms",
    "render_terms",
    "rerender",
    "strip_weight_syntax",
    "subject_index",
]

# The seed: AVOID and NEVER "map to negative prompts with different weights".
AVOID_WEIGHT = 1.0
NEVER_WEIGHT = 1.3

_WEIGHTED = re.compile(r"^\((?P<text>.+):(?P<weight>-?\d+(?:\.\d+)?)\)$")
_PLAIN_EMPHASIS = re.compile(r"^\((?P<text>[^:]+)\)$")
_UNESCAPED_PAREN = re.compile(r"(?<!\\)[()]")
_WEIGHT_ANYWHERE = re.compile(r"\(([^():]+):\s*-?\d+(?:\.\d+)?\)")


def strip_weight_syntax(text: str) -> str:
    """``(warm light:1.3)`` → ``warm light``, for families that do not honour weights."""
    previous = None
    while previous != text:
        previous, text = text, _WEIGHT_ANYWHERE.sub(r"\1", text)
    return text


def has_weight_syntax(text: str) -> bool:
    return bool(_WEIGHT_ANYWHERE.search(text))


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth, current = 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [" ".join(part.split()) for part in parts if part.strip()]


def parse_terms(text: str, family: Family, *, negative: bool = False) -> list[PromptTerm]:
    """Read prompt text into terms: comma-separated (weighted) tags, or one sentence block.

    Negative prompts are always read as comma-separated terms.
    """
    if family.prompt_style == "sentences" and not negative or not family.weight_syntax:
        cleaned = " ".join(strip_weight_syntax(text).split())
        if family.prompt_style == "sentences" and not negative:
            return [PromptTerm(text=cleaned)] if cleaned else []
        return [PromptTerm(text=part) for part in _split_top_level(cleaned)]
    terms: list[PromptTerm] = []
    for part in _split_top_level(text):
        weighted, plain = _WEIGHTED.match(part), _PLAIN_EMPHASIS.match(part)
        if weighted and not _UNESCAPED_PAREN.search(weighted.group("text")):
            terms.append(PromptTerm(text=_unescape(weighted.group("text")), weight=float(weighted.group("weight"))))
        elif plain and not _UNESCAPED_PAREN.search(plain.group("text")):
            terms.append(PromptTerm(text=_unescape(plain.group("text")), weight=1.1))  # (word) is 1.1 in A1111/ComfyUI
        else:
            terms.append(PromptTerm(text=_unescape(part)))
    return terms


def _unescape(text: str) -> str:
    return text.replace("\\(", "(").replace("\\)", ")").strip()


def _escape(text: str) -> str:
    # Literal brackets (booru tags like "sonic (series)") would otherwise read as emphasis.
    return text.replace("(", "\\(").replace(")", "\\)")


def _format_weight(weight: float) -> str:
    return f"{round(weight, 2):g}"


def render_terms(terms: Sequence[PromptTerm], family: Family, *, negative: bool = False) -> str:
    """Prompt text in the family's syntax; weights appear only where the family honours them."""
    if family.prompt_style == "tags" or negative:
        if not family.weight_syntax:
            return ", ".join(t.text for t in terms)
        return ", ".join(
            f"({_escape(t.text)}:{_format_weight(t.weight)})" if t.weight != 1.0 else _escape(t.text) for t in terms
        )
    if not terms:
        return ""
    first, rest = terms[0].text, [t.text for t in terms[1:]]
    if not rest:
        return first
    tail = ", ".join(rest)
    return f"{first.rstrip(' .')}. {tail[0].upper()}{tail[1:]}."


def add_unique(terms: list[PromptTerm], new: Iterable[str], weights: dict[str, float] | None = None) -> list[str]:
    """Append the texts not present yet (case-insensitive), each at its weight (1.0 unless given)."""
    present = {t.text.casefold() for t in terms}
    added: list[str] = []
    for text in new:
        cleaned = " ".join(text.split())
        if cleaned and cleaned.casefold() not in present:
            terms.append(PromptTerm(text=cleaned, weight=(weights or {}).get(text, 1.0)))
            present.add(cleaned.casefold())
            added.append(cleaned)
    return added


def subject_index(positive: Sequence[PromptTerm], family: Family) -> int:
    """Where the artist's own words start: after the family's score, quality and rating tags."""
    fixed = {t.casefold() for t in (*family.score_tags, *family.quality_tags, *family.safety_tags)}
    return next((i for i, term in enumerate(positive) if term.text.casefold() not in fixed), len(positive))


def keep_out(
    positive: list[PromptTerm], terms: Sequence[str], family: Family, *, subject: int | None = None
) -> list[Removal]:
    """Cut the phrases carrying ``terms`` out of ``positive`` in place, never the whole request.

    Only the words of a term go from the subject phrase; other phrases and tags that carry it go whole.
    """
    first = subject if subject is not None else subject_index(positive, family)
    subject_term = positive[first] if 0 <= first < len(positive) else None
    removals: list[Removal] = []
    for term in terms:
        for item in list(positive):
            if not mentions(item.text, term):
                continue
            text, cut = cut_phrases(item.text, term, is_subject=item is subject_term)
            removals.extend(Removal(phrase=phrase, term=term) for phrase in cut)
            if text:
                item.text = text
            else:
                positive.remove(item)
    return removals


def enforce_never(
    positive: list[PromptTerm],
    negative: list[PromptTerm],
    never: Sequence[str],
    family: Family,
    *,
    subject: int | None = None,
) -> list[Removal]:
    """Keep NEVER terms out of the positive (phrase by phrase) and in the negative at ``NEVER_WEIGHT``."""
    removals = keep_out(positive, never, family, subject=subject)
    for term in never:
        negative[:] = [n for n in negative if n.text.casefold() != term.casefold()]
        negative.append(PromptTerm(text=term, weight=NEVER_WEIGHT if family.weight_syntax else 1.0))
    return removals


def estimate_tokens(text: str) -> int:
    """A lower bound on CLIP tokens: one per word and per punctuation mark (long words split further)."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def rerender(draft: PromptDraft, family: Family) -> PromptDraft:
    """Refresh the prompt texts from the terms, warning when a CLIP family's prompt outgrows one chunk."""
    draft.positive = render_terms(draft.positive_terms, family)
    draft.negative = render_terms(draft.negative_terms, family, negative=True)
    tokens = estimate_tokens(draft.positive)
    if family.token_window and tokens > family.token_window:
        warning = (
            f"The prompt is at least {tokens} tokens; {family.name} reads {family.token_window} at a time and the "
            "later chunks pull less, so trim the tags that matter least."
        )
        draft.warnings = [w for w in draft.warnings if not w.startswith("The prompt is at least")] + [warning]
    return draft
