"""``grimoire/eye.md``: the taste profile as the artist reads (and may edit) it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from ategnatos_mcp.eye.models import CATEGORIES, CATEGORY_TITLES, Category, Evidence, EyeProfile, Level, Preference
from ategnatos_mcp.eye.profile import normalise_family, slug

__all__ = ["EYE_VIEW_FILE", "parse_eye", "render_eye"]

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

_PLACEHOLDER = "(preferences accumulate here)"
_TAG = re.compile(r"\s*\[(?P<body>[^\[\]]*)\]\s*$")
_COUNT = re.compile(r"(?:confirmed:\s*)?(?P<n>\d+)\s*(?:sessions?|approvals?)")
_TITLES: dict[str, Category] = {title.casefold(): category for category, title in CATEGORY_TITLES.items()}


@cache
def _template() -> Any:
    import jinja2  # lazy: keeps server start-up fast

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return env.from_string(_TEMPLATE)


def _line(entry: Preference) -> str:
    prefix = {"prefer": "", "avoid": "AVOID: ", "never": "NEVER: "}[entry.level]
    unit = "approval" if entry.category == "model-combos" else "session"
    parts = [f"confirmed: {entry.confirmations} {unit}{'' if entry.confirmations == 1 else 's'}"]
    if entry.contradictions:
        parts.append(f"contradicted: {entry.contradictions}")
    if entry.families:
        parts.append(f"only: {', '.join(entry.families)}")
    return f"{prefix}{entry.text} [{'; '.join(parts)}]"


def render_eye(profile: EyeProfile) -> str:
    """Render the profile in the seed's eye.md format."""
    sections = [
        {"title": CATEGORY_TITLES[category], "lines": [_line(e) for e in profile.entries if e.category == category]}
        for category in CATEGORIES
    ]
    return _template().render(sections=sections)


@dataclass
class _Parsed:
    category: Category
    level: Level
    text: str
    count: int
    contra: int
    families: list[str]


def _parse_line(body: str, category: Category, lineno: int) -> _Parsed:
    level: Level = "prefer"
    for prefix, named in (("AVOID:", "avoid"), ("NEVER:", "never")):
        if body.upper().startswith(prefix):
            level, body = named, body[len(prefix) :].strip()  # type: ignore[assignment]
    count, contra, families = 1, 0, []
    tag = _TAG.search(body)
    if tag:
        body = body[: tag.start()].strip()
        for part in (p.strip() for p in tag.group("body").split(";") if p.strip()):
            if m := _COUNT.fullmatch(part):
                count = int(m.group("n"))
            elif part.startswith("contradicted:") and part[13:].strip().isdigit():
                contra = int(part[13:].strip())
            elif part.startswith("only:"):
                families = [normalise_family(f) for f in part[5:].split(",") if f.strip()]
            else:
                raise ValueError(f"line {lineno}: '[{part}]' is not a tag Ategnatos knows")
    if not body:
        raise ValueError(f"line {lineno}: the bullet has no text")
    return _Parsed(category, level, body, count, contra, families)


def _parse_lines(text: str) -> list[_Parsed]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "# Taste Profile":
        raise ValueError("the first line must be '# Taste Profile'")
    category: Category | None = None
    parsed: list[_Parsed] = []
    in_comment = False
    for lineno, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if in_comment or line.startswith("<!--"):
            in_comment = "-->" not in line
            continue
        if not line:
            continue
        if line.startswith("## "):
            title = line[3:].strip().casefold()
            if title not in _TITLES:
                raise ValueError(f"line {lineno}: '{line}' is not one of the eye's headings")
            category = _TITLES[title]
        elif line.startswith(("- ", "* ")) and category is not None:
            body = line[2:].strip()
            if body != _PLACEHOLDER:
                parsed.append(_parse_line(body, category, lineno))
        else:
            raise ValueError(f"line {lineno}: '{line[:60]}' is not a '- ' bullet under a heading")
    return parsed


def parse_eye(text: str, current: EyeProfile) -> EyeProfile:
    """The profile a hand-edited eye.md describes, keeping evidence and terms of entries that still match.

    Raises:
        ValueError: the text is not in the eye.md format (the reason names the line).
    """
    now = datetime.now(UTC)
    by_text = {entry.text.casefold(): entry for entry in current.entries}
    result = current.model_copy(deep=True)
    result.entries = []
    for item in _parse_lines(text):
        old = by_text.pop(item.text.casefold(), None)
        if old is None:
            entry = Preference(
                id=_unique_id(result, item),
                category=item.category,
                text=item.text,
                level=item.level,
                families=item.families,
                confirmations=item.count,
                contradictions=item.contra,
                evidence=[Evidence(at=now, action="imported", note="added by hand in eye.md")],
                created_at=now,
                updated_at=now,
            )
        else:
            entry = old.model_copy(deep=True)
            before = (entry.category, entry.level, entry.confirmations, entry.contradictions, entry.families)
            entry.category, entry.level, entry.families = item.category, item.level, item.families
            entry.confirmations, entry.contradictions = item.count, item.contra
            if before != (entry.category, entry.level, entry.confirmations, entry.contradictions, entry.families):
                entry.evidence.append(Evidence(at=now, action="edited", note="changed by hand in eye.md"))
                entry.updated_at = now
        result.entries.append(entry)
    return result


def _unique_id(profile: EyeProfile, item: _Parsed) -> str:
    base = f"{item.category}-{slug(item.text)}"
    candidate, n = base, 2
    while profile.find(candidate) is not None:
        candidate, n = f"{base}-{n}", n + 1
    return candidate
