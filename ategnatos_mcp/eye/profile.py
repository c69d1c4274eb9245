"""Changing the taste profile and reading it for a request."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel

from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.eye.models import CATEGORIES, Category, Evidence, EyeProfile, EyeQuery, Level, Preference
from ategnatos_mcp.families import canonical_family, resolve_family
from ategnatos_mcp.text import strip_invisible

__all__ = ["EyeAction", "EyeChange", "applies_to", "apply_change", "normalise_family", "query_profile", "slug"]

EyeAction = Literal["add", "confirm", "weaken", "contradict", "remove", "set_level"]

MAX_TEXT = 300
MAX_TERM = 120
MAX_TERMS = 20
MAX_NOTE = 1000
_LEVELS: tuple[Level, ...] = get_args(Level)
_POSITIVE_CATEGORIES = {"color", "texture", "composition", "style"}
_LEVEL_PREFIX = re.compile(r"^\s*(avoid|never|prefer)\s*[:：]", re.IGNORECASE)
_STOPWORDS = {"a", "an", "the", "and", "or", "of", "with", "in", "on", "for", "to", "no", "not", "very"}


class EyeChange(BaseModel):
    """What an update did, in words, and the entry afterwards (None when removed)."""

    action: EyeAction
    message: str
    entry: Preference | None
    changed: bool


def normalise_family(family: str) -> str:
    """The shared catalogue's id for ``family`` ("Pony Diffusion" -> "pony"); unknown names are kept, normalised."""
    return canonical_family(family)


def applies_to(entry: Preference, family: str | None) -> bool:
    """Whether ``entry`` holds for ``family`` (any alias); entries without families hold for all."""
    if not entry.families or not family:
        return True
    return normalise_family(family) in {normalise_family(f) for f in entry.families}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:48] or "entry"


def _check_category(category: str | None) -> Category:
    if not category:
        raise InvalidRequestError(
            "A new preference needs a category.", hint=f"Pass category: one of {', '.join(CATEGORIES)}."
        )
    if category not in CATEGORIES:
        raise InvalidRequestError(
            f"'{category}' is not a taste category.",
            hint=f"Use one of: {', '.join(CATEGORIES)}.",
        )
    return category  # type: ignore[return-value]


def _check_level(level: str) -> Level:
    if not level:
        raise InvalidRequestError("set_level needs the new level.", hint="Pass level: prefer, avoid or never.")
    if level not in _LEVELS:
        raise InvalidRequestError(f"'{level}' is not a level.", hint="Use prefer, avoid or never.")
    return level  # type: ignore[return-value]


def _clean_text(text: str | None, what: str = "preference") -> str:
    cleaned = " ".join(strip_invisible(text or "").split())
    if not cleaned:
        raise InvalidRequestError(f"The {what} text is empty.", hint="Say the preference in a few words.")
    if len(cleaned) > MAX_TEXT:
        raise InvalidRequestError(
            f"The {what} text is {len(cleaned)} characters long; the limit is {MAX_TEXT}.",
            hint="Keep one idea per entry, in a short phrase; put the story behind it in `note`.",
        )
    if _LEVEL_PREFIX.match(cleaned):
        raise InvalidRequestError(
            f"The text starts with a level ('{cleaned.split(':')[0]}:'); eye.md writes levels that way itself.",
            hint="Pass the words alone as `text` and the level as `level` (prefer, avoid or never).",
        )
    return cleaned


def _clean_terms(terms: list[str] | None) -> list[str]:
    cleaned = [" ".join(strip_invisible(term).split()) for term in terms or [] if strip_invisible(term).strip()]
    if len(cleaned) > MAX_TERMS or any(len(term) > MAX_TERM for term in cleaned):
        raise InvalidRequestError(
            f"Give at most {MAX_TERMS} prompt terms of at most {MAX_TERM} characters each.",
            hint="Prompt terms are short phrases such as 'earth tones' or 'visible brushwork'.",
        )
    return cleaned


def _find(profile: EyeProfile, entry_id: str | None, text: str | None) -> Preference:
    if entry_id:
        found = profile.find(entry_id)
        if found is not None:
            return found
    if not entry_id and not text:
        raise InvalidRequestError(
            "Say which taste entry to change.",
            hint="Pass entry_id (eye_query with detail=true lists the ids) or the entry's text.",
        )
    if text:
        key = " ".join(strip_invisible(text).split()).casefold()
        found = next((entry for entry in profile.entries if entry.text.casefold() == key), None)
        if found is not None:
            return found
    raise NotFoundError(
        f"No taste entry matches {entry_id or text!r}.",
        kind="preference",
        name=entry_id or text or "",
        hint="Call eye_query with no filters to list the entries and their ids.",
    )


def apply_change(
    profile: EyeProfile,
    action: EyeAction,
    *,
    now: datetime,
    entry_id: str | None = None,
    category: str | None = None,
    text: str | None = None,
    level: str | None = None,
    terms: list[str] | None = None,
    families: list[str] | None = None,
    note: str = "",
    session: str = "",
) -> EyeChange:
    """Apply one change to ``profile`` in place.

    Raises:
        InvalidRequestError: unusable arguments (unknown category, empty or oversized text...).
        NotFoundError: the entry to change does not exist.
    """
    note = note.strip()[:MAX_NOTE]
    if action == "add":
        return _add(profile, now, category, text, level, terms, families, note, session)
    entry = _find(profile, entry_id, text)
    day_key = now.date().isoformat()
    if action == "confirm":
        if day_key in entry.confirmation_keys:
            return EyeChange(
                action=action,
                entry=entry,
                changed=False,
                message=f"'{entry.text}' was already confirmed today; it counts once per day "
                f"({entry.confirmations} so far).",
            )
        entry.confirmations += 1
        entry.confirmation_keys.append(day_key)
        message = f"Confirmed '{entry.text}' ({entry.confirmations} sessions now)."
    elif action == "weaken":
        entry.confirmations = max(0, entry.confirmations - 1)
        message = f"Weakened '{entry.text}' ({entry.confirmations} confirmations left)."
    elif action == "contradict":
        entry.contradictions += 1
        message = f"Noted that '{entry.text}' did not hold this time."
        if entry.disputed:
            message += " It is now disputed and is left out of prompts until confirmed again."
    elif action == "set_level":
        new_level = _check_level(level or "")
        message = f"'{entry.text}' is now {new_level.upper()} (was {entry.level.upper()})."
        entry.level = new_level
    else:  # remove
        profile.entries.remove(entry)
        return EyeChange(action=action, entry=None, changed=True, message=f"Removed '{entry.text}' from the eye.")
    entry.evidence.append(Evidence(at=now, action=_EVIDENCE[action], note=note, session=session))
    entry.updated_at = now
    return EyeChange(action=action, entry=entry, changed=True, message=message)


_EVIDENCE: dict[str, Literal["confirmed", "weakened", "contradicted", "level"]] = {
    "confirm": "confirmed",
    "weaken": "weakened",
    "contradict": "contradicted",
    "set_level": "level",
}


def _add(
    profile: EyeProfile,
    now: datetime,
    category: str | None,
    text: str | None,
    level: str | None,
    terms: list[str] | None,
    families: list[str] | None,
    note: str,
    session: str,
) -> EyeChange:
    cleaned = _clean_text(text)
    checked_category = _check_category(category)
    default_level: Level = "avoid" if checked_category == "anti-preferences" else "prefer"
    checked_level = _check_level(level) if level else default_level
    existing = next((e for e in profile.entries if e.text.casefold() == cleaned.casefold()), None)
    if existing is not None:
        change = apply_change(profile, "confirm", now=now, entry_id=existing.id, note=note, session=session)
        change.message = f"'{cleaned}' was already in the eye; counted as a confirmation. {change.message}"
        return change
    base_id = f"{checked_category}-{slug(cleaned)}"
    entry_id, n = base_id, 2
    while profile.find(entry_id) is not None:
        entry_id, n = f"{base_id}-{n}", n + 1
    entry = Preference(
        id=entry_id,
        category=checked_category,
        text=cleaned,
        level=checked_level,
        terms=_clean_terms(terms),
        families=[resolve_family(f).id for f in families or [] if f.strip()],
        confirmation_keys=[now.date().isoformat()],
        evidence=[Evidence(at=now, action="added", note=note, session=session)],
        created_at=now,
        updated_at=now,
    )
    profile.entries.append(entry)
    word = {"prefer": "a preference", "avoid": "something to AVOID", "never": "a NEVER"}[checked_level]
    return EyeChange(
        action="add", entry=entry, changed=True, message=f"Added {word}: '{cleaned}' ({checked_category})."
    )


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if w not in _STOPWORDS and len(w) > 2}


def _mentions(request_words: set[str], term: str) -> bool:
    """True when at least half of the term's meaningful words appear in the request."""
    words = _words(term)
    return bool(words) and len(words & request_words) * 2 >= len(words)


def query_profile(
    profile: EyeProfile, *, family: str | None = None, subject: str | None = None, request: str | None = None
) -> EyeQuery:
    """The entries relevant to a model family and subject, as prompt terms and negative terms.

    NEVER always lands in the negative and is flagged when the request asks for it; AVOID is a default
    negative that the request can override by asking for it explicitly; disputed entries are left out.
    """
    wanted_family = normalise_family(family) if family else None  # unknown: only unscoped entries apply
    request_words = _words(request or "")
    subject_words = _words(subject or "")
    result = EyeQuery(family=family, subject=subject)
    entries = sorted(profile.entries, key=lambda e: (-e.confirmations, e.created_at))
    for entry in entries:
        if not applies_to(entry, wanted_family):
            continue
        if entry.disputed and entry.level != "never":
            result.disputed.append(entry.id)
            continue
        if entry.level == "never":
            result.negative_terms.extend(entry.prompt_terms)
            result.never_conflicts.extend(t for t in entry.prompt_terms if _mentions(request_words, t))
        elif entry.level == "avoid":
            overridden = [t for t in entry.prompt_terms if _mentions(request_words, t)]
            result.avoid_overrides.extend(overridden)
            result.negative_terms.extend(t for t in entry.prompt_terms if t not in overridden)
        elif entry.category == "model-combos":
            result.combos.append(entry.text)
        elif entry.category in _POSITIVE_CATEGORIES or (
            entry.category == "subject" and subject_words & _words(" ".join(entry.prompt_terms))
        ):
            result.positive_terms.extend(entry.prompt_terms)
        else:
            continue
        result.used_entries.append(entry.id)
    result.positive_terms = list(dict.fromkeys(result.positive_terms))
    result.negative_terms = list(dict.fromkeys(result.negative_terms))
    return result
