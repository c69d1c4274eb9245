"""``grimoire/eye.md``: the taste profile as the artist reads (and may edit) it, in the seed's format."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from ategnatos_mcp.eye.models import CATEGORIES, CATEGORY_TITLES, Evidence, EyeProfile, Preference
from ategnatos_mcp.eye.profile import slug
from ategnatos_mcp.eye.reading import EyeLine, ParsedEye, entry_text, read_eye
from ategnatos_mcp.state import Merge
from ategnatos_mcp.state.markdown import minus, render_kept

__all__ = ["EYE_VIEW_FILE", "merge_eye", "parse_eye", "render_eye"]

EYE_VIEW_FILE = "eye.md"

_TEMPLATE = """\
# Taste Profile
<!-- Rendered by Ategnatos from grimoire/.state/eye.json. You may edit the bullets by hand: keep one per line
     under its heading, "AVOID: " or "NEVER: " in front for those levels, and the [confirmed: N sessions] tag. -->
{% for section in sections %}
## {{ section.title }}
{% for line in section.lines -%}
- {{ line }}
{% else -%}
- (preferences accumulate here)
{% endfor -%}
{% endfor %}"""


@cache
def _template() -> Any:
    import jinja2  # lazy: keeps server start-up fast

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return env.from_string(_TEMPLATE)


def _line(entry: Preference) -> str:
    prefix = {"prefer": "", "avoid": "AVOID: ", "never": "NEVER: "}[entry.level]
    if entry.level == "prefer" and entry.category == "anti-preferences":
        prefix = "PREFER: "  # a bare bullet in that section reads as AVOID
    unit = "approval" if entry.category == "model-combos" else "session"
    parts = [f"confirmed: {entry.confirmations} {unit}{'' if entry.confirmations == 1 else 's'}"]
    if entry.contradictions:
        parts.append(f"contradicted: {entry.contradictions}")
    if entry.families:
        parts.append(f"only: {', '.join(entry.families)}")
    return f"{prefix}{entry_text(entry.text)} [{'; '.join(parts)}]"


def render_eye(profile: EyeProfile) -> str:
    """Render the profile in the seed's eye.md format, lines it could not read kept at the end."""
    sections = [
        {"title": CATEGORY_TITLES[category], "lines": [_line(e) for e in profile.entries if e.category == category]}
        for category in CATEGORIES
    ]
    return _template().render(sections=sections) + render_kept(profile.kept_as_written)


def merge_eye(text: str, base: str | None, current: EyeProfile) -> Merge[EyeProfile]:
    """Apply what the artist changed between ``base`` (our render; None for their own file) and ``text``.

    Entries are matched by their words (case aside). One the artist removed is removed; one they added or
    changed takes their category, level, counts and families; one they did not touch keeps the document's
    values, and an entry the document has but ``base`` did not show (added since) is kept.
    """
    now = datetime.now(UTC)
    edited = read_eye(text)
    before = read_eye(base) if base is not None else ParsedEye()
    result = current.model_copy(deep=True)
    gone = [key for key in before.lines if key not in edited.lines]
    result.entries = [e for e in result.entries if e.text.casefold() not in gone]
    by_key = {entry.text.casefold(): entry for entry in result.entries}
    changed = 0
    for key, item in edited.lines.items():
        shown = before.lines.get(key)
        if shown is not None and (shown.text, *shown.facts()) == (item.text, *item.facts()):
            continue
        entry = by_key.get(key)
        if entry is None:
            result.entries.append(_new_entry(result, item, now, from_artist_file=base is None))
            changed += 1
        elif _apply(entry, item, now):
            changed += 1
    result.kept_as_written = minus(result.kept_as_written, minus(before.kept, edited.kept))
    result.kept_as_written += minus(edited.kept, before.kept)
    fresh = _fresh_unread(edited, before)
    result.kept_as_written += [raw for _, raw, _ in fresh]
    return Merge(
        doc=result,
        before=len(before.lines),
        after=len(edited.lines),
        removed=[before.lines[key].text for key in gone],
        changed=changed,
        unread=[f"line {n} '{_short(raw)}' ({why})" for n, raw, why in fresh],
        notes=edited.notes,
    )


def parse_eye(text: str, current: EyeProfile) -> EyeProfile:
    """The profile a hand-edited eye.md describes (compared with the render of ``current``)."""
    return merge_eye(text, render_eye(current), current).doc


def _fresh_unread(edited: ParsedEye, before: ParsedEye) -> list[tuple[int, str, str]]:
    old = [raw for _, raw, _ in before.unread]
    new_raws = minus([raw for _, raw, _ in edited.unread], old)
    fresh: list[tuple[int, str, str]] = []
    for item in edited.unread:
        if item[1] in new_raws:
            new_raws.remove(item[1])
            fresh.append(item)
    return fresh


def _new_entry(profile: EyeProfile, item: EyeLine, now: datetime, *, from_artist_file: bool) -> Preference:
    base = f"{item.category}-{slug(item.text)}"
    entry_id, n = base, 2
    while profile.find(entry_id) is not None:
        entry_id, n = f"{base}-{n}", n + 1
    note = "read from the artist's own eye.md" if from_artist_file else "added by hand in eye.md"
    return Preference(
        id=entry_id,
        category=item.category,
        text=item.text,
        level=item.level,
        families=item.families,
        confirmations=item.count,
        contradictions=item.contradictions,
        evidence=[Evidence(at=now, action="imported", note=note)],
        created_at=now,
        updated_at=now,
    )


def _apply(entry: Preference, item: EyeLine, now: datetime) -> bool:
    before = (entry.text, entry.category, entry.level, entry.confirmations, entry.contradictions, entry.families)
    entry.text, entry.category, entry.level, entry.families = item.text, item.category, item.level, item.families
    entry.confirmations, entry.contradictions = item.count, item.contradictions
    if before == (entry.text, entry.category, entry.level, entry.confirmations, entry.contradictions, entry.families):
        return False
    entry.evidence.append(Evidence(at=now, action="edited", note="changed by hand in eye.md"))
    entry.updated_at = now
    return True


def _short(line: str) -> str:
    line = line.strip()
    return line if len(line) <= 70 else line[:67] + "..."
