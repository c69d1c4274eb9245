"""Turning an artist's feedback ("too busy, a bit warmer") into prompt and setting changes, from data.

Feedback no rule covers is handed back unrecognised for Claude to interpret, never guessed; Claude can
then pass its own reading as an explicit ``Adjustment``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ategnatos_mcp.art.models import (
    Adjustment,
    AppliedFeedback,
    Explanation,
    Family,
    FeedbackMap,
    FeedbackRule,
    PromptDraft,
    PromptTerm,
)
from ategnatos_mcp.art.phrases import mentions
from ategnatos_mcp.art.terms import enforce_never, rerender, strip_weight_syntax

__all__ = ["FeedbackMatch", "apply_adjustments", "match_feedback"]

_CLAUSE_SPLIT = re.compile(r"[,;.!?\n]+|\b(?:and|but|also|plus|though)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no longer|never)\b|n't\b", re.IGNORECASE)
_MAX_WEIGHT = 1.5
_CFG_RANGE = (1.0, 15.0)
_STEPS_RANGE = (1, 80)


_EMPHASIS_STEP = 0.2


@dataclass(frozen=True)
class FeedbackMatch:
    rule: FeedbackRule
    phrase: str
    clause: str
    intensity: float = 1.0


def _intensity(clause: str, feedback_map: FeedbackMap) -> float:
    lowered = clause.casefold()
    found = [
        (len(word), factor)
        for word, factor in feedback_map.intensity.items()
        if re.search(rf"\b{re.escape(word.casefold())}\b", lowered)
    ]
    return max(found)[1] if found else 1.0


def match_feedback(text: str, feedback_map: FeedbackMap) -> tuple[list[FeedbackMatch], list[str]]:
    """The rules a piece of feedback triggers, and the clauses no rule covers (for Claude to interpret).

    A clause that negates its phrase ("not too dark") is left for Claude rather than read backwards.
    """
    matches: list[FeedbackMatch] = []
    unrecognised: list[str] = []
    for raw in _CLAUSE_SPLIT.split(text):
        clause = " ".join(raw.split())
        if not clause:
            continue
        found = _match_clause(clause, feedback_map)
        if found is None:
            unrecognised.append(clause)
            continue
        scale = _intensity(clause, feedback_map)
        for rule, phrase in found:
            if all(m.rule.id != rule.id for m in matches):
                matches.append(FeedbackMatch(rule=rule, phrase=phrase, clause=clause, intensity=scale))
    return matches, unrecognised


def _match_clause(clause: str, feedback_map: FeedbackMap) -> list[tuple[FeedbackRule, str]] | None:
    lowered = clause.casefold()
    hits = [
        (m.start(), m.end(), rule, phrase)
        for rule in feedback_map.rules
        for phrase in rule.phrases
        for m in re.finditer(rf"\b{re.escape(phrase.casefold())}\b", lowered)
    ]
    hits.sort(key=lambda h: h[0] - h[1])  # longest phrase first
    taken: list[tuple[int, int]] = []
    chosen: list[tuple[FeedbackRule, str]] = []
    for start, end, rule, phrase in hits:
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            continue
        if _NEGATION.search(lowered[:start]):
            return None
        taken.append((start, end))
        chosen.append((rule, phrase))
    return chosen or None


def _index(terms: list[PromptTerm], text: str) -> int | None:
    key = text.casefold()
    return next((i for i, t in enumerate(terms) if t.text.casefold() == key), None)


def _apply_one(
    draft: PromptDraft,
    family: Family,
    adj: Adjustment,
    protected: set[str],
    scale: float = 1.0,
    avoided: frozenset[str] = frozenset(),
) -> list[str]:
    """Apply one adjustment in place, its emphasis and setting deltas scaled; returns notes about refusals."""
    notes: list[str] = []
    positive, negative = draft.positive_terms, draft.negative_terms
    keep_first = family.prompt_style == "sentences"
    for text in adj.remove:
        i = _index(positive, text)
        if i is not None and not (keep_first and i == 0):
            positive.pop(i)
    for text in adj.add:
        text = text if family.weight_syntax else strip_weight_syntax(text)
        if text.casefold() in protected:
            notes.append(f"Did not add '{text}': the artist's eye marks it NEVER.")
            continue
        if any(mentions(text, term) for term in avoided):
            notes.append(
                f"Did not add '{text}': the artist's eye says AVOID it. If they want it this time, put it in the request."
            )
            continue
        if _index(positive, text) is None:
            positive.append(PromptTerm(text=text))
        i = _index(negative, text)
        if i is not None:
            negative.pop(i)
    for text in adj.emphasize:
        _emphasize(positive, family, text, protected, round(max(0.1, _EMPHASIS_STEP * scale), 2))
    for text in adj.remove_negative:
        i = _index(negative, text)
        if i is not None and text.casefold() not in protected:
            negative.pop(i)
    for text in adj.add_negative:
        i = _index(positive, text)
        if i is not None and not (keep_first and i == 0):
            positive.pop(i)
        if _index(negative, text) is None:
            negative.append(PromptTerm(text=text))
    _adjust_settings(draft, adj, scale)
    return notes


def _emphasize(positive: list[PromptTerm], family: Family, text: str, protected: set[str], step: float) -> None:
    if text.casefold() in protected:
        return
    i = _index(positive, text)
    if i is None:
        positive.append(PromptTerm(text=text))
        i = len(positive) - 1
    if family.weight_syntax:
        term = positive[i]
        term.weight = min(_MAX_WEIGHT, round(max(term.weight, 1.0) + step, 2))
    elif family.prompt_style == "sentences" and i > 1:
        # Without weights, earlier words carry more: move it right after the subject.
        positive.insert(1, positive.pop(i))


def _adjust_settings(draft: PromptDraft, adj: Adjustment, scale: float) -> None:
    s = draft.settings
    if adj.cfg_delta and s.guidance is None:
        s.cfg = round(min(_CFG_RANGE[1], max(_CFG_RANGE[0], s.cfg + adj.cfg_delta * scale)), 2)
    if adj.guidance_delta and s.guidance is not None:
        s.guidance = round(min(10.0, max(1.0, s.guidance + adj.guidance_delta * scale)), 2)
    if adj.steps_delta:
        s.steps = min(_STEPS_RANGE[1], max(_STEPS_RANGE[0], s.steps + round(adj.steps_delta * scale)))


def apply_adjustments(
    base: PromptDraft,
    family: Family,
    matches: Sequence[FeedbackMatch],
    *,
    explicit: Adjustment | None = None,
    never: Sequence[str] = (),
    avoid: Sequence[str] = (),
    unrecognised: Sequence[str] = (),
) -> PromptDraft:
    """A new draft: ``base`` changed as the feedback data says (plus Claude's explicit changes).

    NEVER terms are protected: no adjustment can add them, and they stay in the negative (a phrase that
    carries one is cut out, the rest of the prompt stays). AVOID terms are not added by feedback either.
    """
    draft = base.model_copy(deep=True)
    draft.explanations, draft.applied_feedback, draft.warnings, draft.conflicts = [], [], [], []
    draft.similar, draft.tips = [], []
    protected = {t.casefold() for t in never}
    avoided = frozenset(t.casefold() for t in avoid)
    for match in matches:
        adj = match.rule.adjustment_for(family)
        draft.warnings.extend(_apply_one(draft, family, adj, protected, match.intensity, avoided))
        draft.applied_feedback.append(AppliedFeedback(rule=match.rule.id, phrase=match.phrase, why=adj.why))
        draft.explanations.append(Explanation(choice=f"'{match.clause}'", why=adj.why))
    if explicit is not None:
        draft.warnings.extend(_apply_one(draft, family, explicit, protected, avoided=avoided))
        why = explicit.why or "Changes Claude chose for feedback the mapping does not cover."
        draft.applied_feedback.append(AppliedFeedback(rule="explicit", phrase="(interpreted)", why=why))
        draft.explanations.append(Explanation(choice="interpreted feedback", why=why))
    removals = enforce_never(draft.positive_terms, draft.negative_terms, never, family)
    draft.warnings.extend(f"Left out '{r.phrase}': the artist's eye marks '{r.term}' NEVER." for r in removals)
    if any(m.rule.adjustment_for(family).add_negative for m in matches) and not family.negative_prompt:
        draft.warnings.append(family.negative_note)
    draft.unrecognized_feedback = list(unrecognised)
    return rerender(draft, family)
