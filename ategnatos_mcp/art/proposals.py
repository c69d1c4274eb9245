"""What an approval proposes for the eye: confirm the taste that shaped the image, add what feedback taught.

Proposals only: Claude asks the artist and calls ``eye_update``; nothing here writes the eye.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from ategnatos_mcp.art.models import EyeSuggestion, FeedbackRule, Iteration
from ategnatos_mcp.art.taste import new_eye_suggestions
from ategnatos_mcp.eye import EyeProfile

__all__ = ["approval_evidence", "approval_proposals", "shaping_entries"]


def approval_evidence(project: str, asset: str, it: Iteration, notes: str) -> str:
    """The note an eye_update from this approval carries: which version, which images, the artist's words."""
    text = f"Approved {project}/{asset} v{it.version}"
    if it.outputs:
        more = f" and {len(it.outputs) - 3} more" if len(it.outputs) > 3 else ""
        text += f" ({', '.join(it.outputs[:3])}{more})"
    if notes.strip():
        text += f': "{" ".join(notes.split())[:300]}"'
    return text + "."


def shaping_entries(profile: EyeProfile, it: Iteration) -> list[EyeSuggestion]:
    """``confirm`` proposals for the eye preferences that shaped ``it``: used by art_prompt, still in its prompt.

    Only ``prefer`` entries count (an approved image is evidence for what it shows, not for what it left out);
    an entry whose every term was taken out by later feedback did not shape the image. Entries removed from
    the eye since are skipped.
    """
    present = {t.text.casefold() for t in it.positive_terms}
    positive = it.positive.casefold()
    proposals = []
    for entry_id in dict.fromkeys(it.eye_entries):
        entry = profile.find(entry_id)
        if entry is None or entry.level != "prefer" or entry.category == "model-combos":
            continue
        used = [t for t in entry.prompt_terms if t.casefold() in present or _has_phrase(positive, t.casefold())]
        if not used:
            continue
        proposals.append(
            EyeSuggestion(
                action="confirm",
                entry_id=entry.id,
                category=entry.category,
                text=entry.text,
                level=entry.level,
                reason=f"Your eye put {', '.join(repr(t) for t in used)} into version {it.version}, "
                "and the artist approved it.",
            )
        )
    return proposals


def _has_phrase(text: str, phrase: str) -> bool:
    """``phrase`` in ``text`` as whole words (a weighted '(warm light:1.2)' counts, 'warmth' is not 'warm')."""
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def approval_proposals(
    profile: EyeProfile,
    chain: Sequence[Iteration],
    approved: Iteration,
    *,
    rules: Sequence[FeedbackRule],
    family_name: str,
    today: date,
    evidence: str,
) -> list[EyeSuggestion]:
    """The eye_update calls to propose for an approved version, each once, each carrying ``evidence``.

    In order: the eye preferences that shaped the image (confirm), the taste the feedback along its lineage
    points at (add or confirm), the LoRA combinations it used (model-combos). An entry already confirmed
    ``today`` is left out: eye_update would not count it again.
    """
    by_id = {rule.id: rule for rule in rules}
    candidates = shaping_entries(profile, approved)
    candidates += [
        hint
        for it in chain
        for fb in it.applied_feedback
        if fb.rule in by_id and (hint := by_id[fb.rule].eye_hint) is not None
    ]
    candidates += [
        EyeSuggestion(
            category="model-combos",
            text=f"{family_name} with LoRA {lora.name} at {lora.weight:g}",
            reason="This combination made an approved image.",
        )
        for lora in approved.loras
    ]
    proposals = new_eye_suggestions(profile, candidates, today=today)
    return [p.model_copy(update={"note": p.note or evidence}) for p in proposals]
