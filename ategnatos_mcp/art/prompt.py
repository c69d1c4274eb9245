"""Building a prompt in the syntax a model family wants, with a one-sentence reason for each choice."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ategnatos_mcp.art.families import pick_resolution
from ategnatos_mcp.art.models import (
    Explanation,
    Family,
    LibraryMatch,
    LoraUse,
    PromptDraft,
    PromptSettings,
    PromptTerm,
    TasteGuidance,
)

__all__ = [
    "build_prompt",
    "enforce_never",
    "estimate_tokens",
    "parse_terms",
    "render_terms",
    "rerender",
    "strip_weight_syntax",
    "words",
]

_WEIGHTED = re.compile(r"^\((?P<text>.+):(?P<weight>-?\d+(?:\.\d+)?)\)$")
_PLAIN_EMPHASIS = re.compile(r"^\((?P<text>[^:]+)\)$")
_UNESCAPED_PAREN = re.compile(r"(?<!\\)[()]")
_WEIGHT_ANYWHERE = re.compile(r"\(([^():]+):\s*-?\d+(?:\.\d+)?\)")
_STOPWORDS = {"a", "an", "the", "and", "or", "of", "with", "in", "on", "for", "to", "very", "is", "at"}


def words(text: str) -> set[str]:
    """The meaningful lower-case words of a phrase."""
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if w not in _STOPWORDS and len(w) > 1}


def _mentions(haystack: set[str], term: str) -> bool:
    """True when at least half of the term's meaningful words appear in ``haystack``."""
    needle = words(term)
    return bool(needle) and len(needle & haystack) * 2 >= len(needle)


def strip_weight_syntax(text: str) -> str:
    """``(warm light:1.3)`` → ``warm light``, for families that do not honour weights."""
    previous = None
    while previous != text:
        previous, text = text, _WEIGHT_ANYWHERE.sub(r"\1", text)
    return text


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
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
    terms = []
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


def _add_unique(terms: list[PromptTerm], new: Iterable[str], weight: float = 1.0) -> list[str]:
    present = {t.text.casefold() for t in terms}
    added = []
    for text in new:
        cleaned = " ".join(text.split())
        if cleaned and cleaned.casefold() not in present:
            terms.append(PromptTerm(text=cleaned, weight=weight))
            present.add(cleaned.casefold())
            added.append(cleaned)
    return added


def _remove_words(text: str, term: str) -> str:
    pattern = re.escape(term) if re.search(re.escape(term), text, re.IGNORECASE) else None
    targets = [pattern] if pattern else [re.escape(w) for w in words(term)]
    for target in targets:
        text = re.sub(rf"\b{target}\b", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+([,.])", r"\1", text)
    text = re.sub(r",\s*,", ",", text)
    return " ".join(text.split()).strip(" ,")


def enforce_never(
    positive: list[PromptTerm], negative: list[PromptTerm], never: Sequence[str], family: Family
) -> list[str]:
    """Keep NEVER terms out of the positive and in the negative, in place; returns the terms found in the positive."""
    removed: list[str] = []
    for term in never:
        for item in list(positive):
            if not _mentions(words(item.text), term):
                continue
            if family.prompt_style == "tags" or len(positive) > 1 and item is not positive[0]:
                positive.remove(item)
                removed.append(term)
            else:
                stripped = _remove_words(item.text, term)
                if stripped != item.text:
                    removed.append(term)
                    item.text = stripped
                if not stripped:
                    positive.remove(item)
        negative[:] = [n for n in negative if n.text.casefold() != term.casefold()]
        negative.append(PromptTerm(text=term))
    return list(dict.fromkeys(removed))


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


def _settings(family: Family, aspect: str | None, seed: int | None) -> tuple[PromptSettings, str, Explanation]:
    ratio, (width, height) = pick_resolution(family, aspect)
    s = family.settings
    settings = PromptSettings(
        sampler=s.sampler,
        scheduler=s.scheduler,
        steps=s.steps,
        cfg=s.cfg,
        guidance=s.guidance,
        clip_skip=s.clip_skip,
        width=width,
        height=height,
        seed=seed,
    )
    asked = f" for the {aspect} you asked for" if aspect else ""
    why = f"{width}x{height} ({ratio}) is the trained size of {family.name} closest{asked}"
    why += "; crop or export to the exact final size afterwards." if aspect else "; give an aspect ratio to change it."
    return settings, ratio, Explanation(choice=f"size {width}x{height}", why=why)


def _settings_explanations(family: Family, settings: PromptSettings) -> list[Explanation]:
    core = f"{settings.sampler} / {settings.scheduler}, {settings.steps} steps, CFG {settings.cfg:g}"
    out = [
        Explanation(
            choice=core,
            why=family.settings.note or f"The recommended starting point for {family.name} (see the model database).",
        )
    ]
    if settings.guidance is not None:
        out.append(
            Explanation(
                choice=f"guidance {settings.guidance:g}",
                why="Flux steers with distilled guidance instead of CFG; lower is looser, higher more literal.",
            )
        )
    if settings.clip_skip is not None:
        why = (
            f"{family.name} was trained to read the second-to-last text-encoder layer; without it quality collapses."
            if settings.clip_skip == 2
            else "The text encoder's last layer, as the base model was trained."
        )
        out.append(Explanation(choice=f"clip skip {settings.clip_skip}", why=why))
    return out


def _intent_terms(intent: str, family: Family, warnings: list[str]) -> list[PromptTerm]:
    if not family.weight_syntax and _WEIGHT_ANYWHERE.search(intent):
        warnings.append(f"{family.name} does not honour (term:1.2) weights, so I removed them: {family.weight_note}")
    return parse_terms(intent, family)


def build_prompt(
    family: Family,
    intent: str,
    *,
    style_terms: Sequence[str] = (),
    negative_terms: Sequence[str] = (),
    aspect: str | None = None,
    seed: int | None = None,
    taste: TasteGuidance | None = None,
    loras: Sequence[tuple[LoraUse, float, float]] = (),
    similar: Sequence[LibraryMatch] = (),
    safe_for_work: bool = True,
) -> PromptDraft:
    """Positive and negative prompt plus settings for ``intent`` on ``family``, each choice explained.

    ``loras`` are ``(use, weight_min, weight_max)``: the chosen weight and the LoRA's recommended range.
    """
    taste = taste or TasteGuidance()
    warnings: list[str] = []
    explanations: list[Explanation] = []
    positive: list[PromptTerm] = []
    if family.prompt_style == "tags":
        style_why = f"{family.name} was trained on booru-style tags, so the prompt is short comma-separated tags."
    else:
        style_why = f"{family.name} reads plain language through its T5 encoder, so the prompt is written as sentences."
    explanations.append(Explanation(choice=f"{family.prompt_style} prompt", why=style_why))
    if family.score_tags:
        _add_unique(positive, family.score_tags)
        explanations.append(
            Explanation(
                choice="score tags first",
                why=f"{family.name} was trained to read {', '.join(family.score_tags)} as its quality scale.",
            )
        )
    if family.quality_tags:
        _add_unique(positive, family.quality_tags)
        explanations.append(
            Explanation(choice="quality tags", why=f"{family.name} was trained with {', '.join(family.quality_tags)}.")
        )
    safety_negative = _safety(family, positive, explanations) if safe_for_work else []
    for term in _intent_terms(intent, family, warnings):
        if term.text.casefold() not in {t.text.casefold() for t in positive}:
            positive.append(term)
    if style_terms:
        _add_unique(positive, [strip_weight_syntax(t) if not family.weight_syntax else t for t in style_terms])
    if taste.positive:
        added = _add_unique(positive, taste.positive)
        if added:
            explanations.append(
                Explanation(choice="from your eye", why=f"Added {', '.join(added)}: your taste profile.")
            )
    for use, low, high in loras:
        _add_unique(positive, use.trigger_words)
        triggers = f" and its trigger words {', '.join(use.trigger_words)}" if use.trigger_words else ""
        explanations.append(
            Explanation(
                choice=f"LoRA {use.name} at {use.weight:g}",
                why=f"Inside its recommended range {low:g}-{high:g}{triggers}; load it with a LoRA loader node.",
            )
        )
    explanations.append(
        Explanation(
            choice="weights" if family.weight_syntax else "no weight syntax",
            why=family.weight_note,
        )
    )
    negative = _negative(family, intent, negative_terms, taste, explanations)
    _add_unique(negative, safety_negative)
    conflicts = _never(positive, negative, taste, family, explanations)
    settings, _, size_why = _settings(family, aspect, seed)
    explanations.append(size_why)
    explanations.extend(_settings_explanations(family, settings))
    if similar:
        names = ", ".join(f"'{m.name}'" for m in similar)
        explanations.append(
            Explanation(choice="similar prompts", why=f"Your library has proven prompts like this one: {names}.")
        )
    if taste.combos:
        explanations.append(Explanation(choice="model combos", why=f"Your eye notes: {'; '.join(taste.combos)}."))
    draft = PromptDraft(
        family=family.id,
        family_name=family.name,
        positive="",
        negative="",
        positive_terms=positive,
        negative_terms=negative,
        settings=settings,
        loras=[use for use, _, _ in loras],
        explanations=explanations,
        conflicts=conflicts,
        eye_entries=list(taste.entries),
        warnings=warnings,
        similar=list(similar),
        tips=list(family.tips),
    )
    return rerender(draft, family)


def _safety(family: Family, positive: list[PromptTerm], explanations: list[Explanation]) -> list[str]:
    """Add the family's safe-for-work rating tags; returns the matching negatives to add."""
    added = _add_unique(positive, family.safety_tags)
    if added or family.safety_negative:
        kept_out = f" and {', '.join(family.safety_negative)} in the negative" if family.safety_negative else ""
        explanations.append(
            Explanation(
                choice="safe for work",
                why=f"{family.name} was trained with rating tags, so {', '.join(added)}{kept_out} keep it safe for work.",
            )
        )
    return list(family.safety_negative)


def _negative(
    family: Family,
    intent: str,
    extra: Sequence[str],
    taste: TasteGuidance,
    explanations: list[Explanation],
) -> list[PromptTerm]:
    negative: list[PromptTerm] = []
    intent_words = words(intent)
    defaults = [t for t in family.default_negative if not words(t) or not words(t) <= intent_words]
    dropped = [t for t in family.default_negative if t not in defaults]
    _add_unique(negative, defaults)
    if defaults:
        why = f"{family.name}'s usual negatives keep common defects out."
        if dropped:
            why += f" Left out {', '.join(dropped)} because your request asks for it."
        explanations.append(Explanation(choice="default negatives", why=why))
    if not family.negative_prompt:
        explanations.append(Explanation(choice="negative prompt", why=family.negative_note))
    _add_unique(negative, extra)
    avoid = [t for t in taste.negative if t not in taste.never]
    if _add_unique(negative, avoid):
        explanations.append(
            Explanation(
                choice="eye AVOID terms", why=f"Your eye says to avoid {', '.join(avoid)}, so they are negatives."
            )
        )
    explanations.extend(
        Explanation(
            choice=f"kept '{term}'",
            why=f"Your eye lists '{term}' as AVOID, but this request asks for it, so it is not a negative this time.",
        )
        for term in taste.avoid_overrides
    )
    return negative


def _never(
    positive: list[PromptTerm],
    negative: list[PromptTerm],
    taste: TasteGuidance,
    family: Family,
    explanations: list[Explanation],
) -> list[str]:
    never = list(dict.fromkeys([*taste.never, *taste.never_conflicts]))
    if not never:
        return []
    removed = enforce_never(positive, negative, never, family)
    explanations.append(
        Explanation(choice="eye NEVER terms", why=f"Your eye says never {', '.join(never)}: always in the negative.")
    )
    intent_conflicts = list(dict.fromkeys([*taste.never_conflicts, *removed]))
    return [
        f"The request asks for '{term}', which the artist's eye marks NEVER. It was left out of the prompt; "
        "ask the artist before overriding it (only eye_update can change a NEVER entry)."
        for term in intent_conflicts
    ]
