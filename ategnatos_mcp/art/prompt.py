"""Building a prompt in the syntax a model family wants, with a one-sentence reason for each choice.

Sentences about a family come word for word from the model database's facts (each with its sources);
everything else said here is about the artist's own request, eye, studio or library.
"""

from __future__ import annotations

from collections.abc import Sequence

from ategnatos_mcp.art.families import pick_resolution
from ategnatos_mcp.art.models import (
    Explanation,
    FactKey,
    Family,
    LibraryMatch,
    LoraUse,
    PromptDraft,
    PromptSettings,
    PromptTerm,
    TasteGuidance,
)
from ategnatos_mcp.art.phrases import Removal, mentions, words
from ategnatos_mcp.art.terms import (
    AVOID_WEIGHT,
    NEVER_WEIGHT,
    add_unique,
    enforce_never,
    has_weight_syntax,
    parse_terms,
    render_terms,
    rerender,
    strip_weight_syntax,
)

__all__ = [
    "PREFER_WEIGHTS",
    "build_prompt",
    "enforce_never",
    "fact",
    "never_conflicts",
    "parse_terms",
    "render_terms",
    "rerender",
    "strip_weight_syntax",
    "words",
]

# A preference confirmed in 1, 2, 3, 4, 5+ sessions: how strongly it is applied (the seed: counts
# "influence how strongly the preference is applied"). Capped so taste never drowns the request.
PREFER_WEIGHTS = (1.0, 1.05, 1.1, 1.2, 1.3)
_SCALE = "1 session 1.0, 2: 1.05, 3: 1.1, 4: 1.2, 5 or more: 1.3"


def fact(family: Family, key: FactKey, *, choice: str | None = None, extra: str = "") -> Explanation:
    """The model database's sentence for ``key``, optionally followed by what it means for this request."""
    known = family.facts[key]
    why = f"{known.text} {extra}".strip() if extra else known.text
    return Explanation(choice=choice or known.choice, why=why, fact=key)


def _settings(family: Family, aspect: str | None, seed: int | None) -> tuple[PromptSettings, Explanation]:
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
    if aspect:
        extra = f"{width}x{height} ({ratio}) is the closest to the {aspect} you asked for; crop or export to the exact final size afterwards."
    else:
        extra = f"{width}x{height} ({ratio}); give an aspect ratio to change it."
    return settings, fact(family, "sizes", choice=f"size {width}x{height}", extra=extra)


def _settings_explanations(family: Family, settings: PromptSettings) -> list[Explanation]:
    core = f"{settings.sampler} / {settings.scheduler}, {settings.steps} steps, CFG {settings.cfg:g}"
    out = [fact(family, "settings", choice=core)]
    if settings.guidance is not None:
        out.append(fact(family, "guidance", choice=f"guidance {settings.guidance:g}"))
    if settings.clip_skip is not None:
        out.append(fact(family, "clip_skip", choice=f"clip skip {settings.clip_skip}"))
    return out


def _intent_terms(intent: str, family: Family, warnings: list[str]) -> list[PromptTerm]:
    if not family.weight_syntax and has_weight_syntax(intent):
        warnings.append(f"{family.name} does not honour (term:1.2) weights, so I removed them: {family.weight_note}")
    return parse_terms(intent, family)


def _weight(value: float) -> str:
    """1.0, 1.05, 1.1: what the artist sees in the prompt."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _taste_terms(positive: list[PromptTerm], taste: TasteGuidance, family: Family) -> Explanation | None:
    """Add the eye's preferences: weighted by confirmations where the family has weights, else ordered."""
    ordered = sorted(taste.positive, key=lambda t: -taste.weights.get(t, 1.0))
    weights = taste.weights if family.weight_syntax else {}
    added = add_unique(positive, ordered, weights)
    if not added:
        return None

    def shown(term: str) -> str:
        n = taste.sessions.get(term, 1)
        strength = f": {_weight(taste.weights.get(term, 1.0))}" if family.weight_syntax else ""
        return f"{term} ({n} session{'s' if n != 1 else ''}{strength})"

    listed = ", ".join(shown(t) for t in added)
    if family.weight_syntax:
        why = f"Added {listed} from your taste profile; the more sessions confirmed a preference, the more it weighs ({_SCALE})."
    else:
        why = (
            f"Added {listed} from your taste profile, most confirmed first: without weights, earlier words carry more."
        )
    return Explanation(choice="from your eye", why=why)


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
    explanations = [fact(family, "prompt_style")]
    positive: list[PromptTerm] = []
    if family.score_tags:
        add_unique(positive, family.score_tags)
        explanations.append(fact(family, "score_tags"))
    if family.quality_tags:
        add_unique(positive, family.quality_tags)
        explanations.append(fact(family, "quality_tags"))
    safety_negative = _safety(family, positive, explanations) if safe_for_work else []
    subject = len(positive)
    for term in _intent_terms(intent, family, warnings):
        if term.text.casefold() not in {t.text.casefold() for t in positive}:
            positive.append(term)
    if style_terms:
        add_unique(positive, [strip_weight_syntax(t) if not family.weight_syntax else t for t in style_terms])
    if (from_eye := _taste_terms(positive, taste, family)) is not None:
        explanations.append(from_eye)
    for use, low, high in loras:
        add_unique(positive, use.trigger_words)
        triggers = f" and its trigger words {', '.join(use.trigger_words)}" if use.trigger_words else ""
        explanations.append(
            Explanation(
                choice=f"LoRA {use.name} at {use.weight:g}",
                why=f"Inside its recommended range {low:g}-{high:g}{triggers}; load it with a LoRA loader node.",
            )
        )
    explanations.append(fact(family, "weights"))
    negative = _negative(family, intent, negative_terms, taste, explanations)
    add_unique(negative, safety_negative)
    conflicts = _never(positive, negative, taste, family, explanations, subject, intent)
    settings, size_why = _settings(family, aspect, seed)
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
    added = add_unique(positive, family.safety_tags)
    if added or family.safety_negative:
        explanations.append(fact(family, "safety"))
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
    add_unique(negative, defaults)
    if defaults or not family.negative_prompt:
        left_out = f"Left out {', '.join(dropped)} because your request asks for it." if dropped else ""
        choice = "default negatives" if defaults else "negative prompt"
        explanations.append(fact(family, "negative", choice=choice, extra=left_out))
    add_unique(negative, extra)
    avoid = [t for t in taste.negative if t not in taste.never]
    if add_unique(negative, avoid, dict.fromkeys(avoid, AVOID_WEIGHT)):
        weight = f" at weight {AVOID_WEIGHT:g} (NEVER terms weigh {NEVER_WEIGHT:g})" if family.weight_syntax else ""
        explanations.append(
            Explanation(
                choice="eye AVOID terms",
                why=f"Your eye says to avoid {', '.join(avoid)}, so they are negatives{weight}.",
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


def never_conflicts(removals: Sequence[Removal], flagged: Sequence[str] = ()) -> list[str]:
    """One sentence per phrase a NEVER entry took out of the prompt, saying exactly what went."""
    out = [
        f"The request asks for '{r.phrase}', which goes against '{r.term}' (NEVER in the artist's eye). I left out "
        f"exactly '{r.phrase}' and kept the rest; ask the artist before overriding it (only eye_update can change "
        "a NEVER entry)."
        for r in removals
    ]
    out += [
        f"The request touches '{term}', which the artist's eye marks NEVER; it stays in the negative. Ask the "
        "artist before overriding it (only eye_update can change a NEVER entry)."
        for term in dict.fromkeys(flagged)
        if term not in {r.term for r in removals}
    ]
    return out


def _never(
    positive: list[PromptTerm],
    negative: list[PromptTerm],
    taste: TasteGuidance,
    family: Family,
    explanations: list[Explanation],
    subject: int,
    intent: str,
) -> list[str]:
    never = list(dict.fromkeys([*taste.never, *taste.never_conflicts]))
    if not never:
        return []
    removals = enforce_never(positive, negative, never, family, subject=subject)
    if not family.negative_prompt:
        where = "kept out of the prompt (negatives have no effect here)"
    elif family.weight_syntax:
        where = f"always in the negative at weight {NEVER_WEIGHT:g}, never in the prompt"
    else:
        where = "always in the negative, never in the prompt"
    explanations.append(Explanation(choice="eye NEVER terms", why=f"Your eye says never {', '.join(never)}: {where}."))
    return never_conflicts(removals, [t for t in taste.never_conflicts if mentions(intent, t)])
