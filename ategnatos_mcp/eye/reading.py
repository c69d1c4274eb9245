"""Reading ``eye.md`` as an artist may have written it: the seed's format, typos, other languages.

Every line ends up somewhere: a taste entry, a heading, our own comment, or "unread" (with the reason), which
the view keeps exactly as written. Nothing is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ategnatos_mcp.eye.models import CATEGORY_TITLES, Category, Level
from ategnatos_mcp.state.markdown import KEPT_TITLE, closest, decode, escape, fold, is_our_comment, lines_of, plain

__all__ = ["PLACEHOLDER", "EyeLine", "ParsedEye", "entry_text", "read_eye"]

PLACEHOLDER = "(preferences accumulate here)"
TITLE = "Taste Profile"
_SPECIALS = "[]:：("
_HEADING = re.compile(r"^#{2,6}\s+(?P<title>.+?)\s*#*\s*$")
_BULLET = re.compile(r"^[-*+•]\s+(?P<body>.*)$")

# Headings as the seed writes them, as people spell them, and in a few languages; typos are matched closely.
_HEADING_WORDS: dict[Category, tuple[str, ...]] = {
    "color": ("color", "colors", "colour", "colours", "palette", "couleur", "couleurs", "farbe", "farben", "colores",
              "色", "色彩", "カラー", "配色"),
    "texture": ("texture", "textures", "textur", "textura", "matiere", "質感", "テクスチャ", "テクスチャー", "マチエール"),
    "composition": ("composition", "compositions", "komposition", "composicion", "構図", "レイアウト"),
    "style": ("style", "styles", "stil", "estilo", "スタイル", "画風", "作風"),
    "subject": ("subject", "subjects", "subject matter", "sujet", "sujets", "motif", "thema", "tema", "主題", "題材",
                "モチーフ"),
    "anti-preferences": ("anti preferences", "antipreferences", "anti preference", "dislikes", "avoid", "never",
                         "a eviter", "苦手", "避けるもの", "ng"),
    "model-combos": ("model combos", "model combo", "model combinations", "combos", "combinaisons de modeles",
                     "combinaisons", "モデルの組み合わせ", "組み合わせ"),
}  # fmt: skip
HEADINGS: dict[str, Category] = {fold(title): category for category, title in CATEGORY_TITLES.items()}
HEADINGS.update({fold(w): category for category, words in _HEADING_WORDS.items() for w in words})
_LEVEL_TABLE: dict[Level, tuple[str, ...]] = {
    "avoid": ("avoid", "eviter", "vermeiden", "evitar", "evitare", "避ける", "回避"),
    "never": ("never", "jamais", "nie", "niemals", "nunca", "mai", "絶対なし", "禁止", "ng"),
    "prefer": ("prefer",),
}
_LEVEL_WORDS: dict[str, Level] = {fold(w): level for level, words in _LEVEL_TABLE.items() for w in words}
_OUR_COUNT = re.compile(r"confirmed: (\d+) (?:sessions?|approvals?)")
_COUNT_WORDS = {
    fold(w)
    for w in (
        "confirmed", "confirmations", "confirmation", "session", "sessions", "approval", "approvals", "approved",
        "times", "time", "x", "confirme", "confirmes", "confirmee", "seance", "seances", "fois", "validations",
        "bestatigt", "mal", "sitzungen", "確認", "確認済み", "回", "承認", "セッション", "件",
    )
}  # fmt: skip


@dataclass
class EyeLine:
    """One readable bullet: a taste entry as the view states it."""

    category: Category
    level: Level
    text: str
    count: int
    contradictions: int
    families: list[str]

    @property
    def key(self) -> str:
        return self.text.casefold()

    def facts(self) -> tuple[object, ...]:
        return (self.category, self.level, self.count, self.contradictions, self.families)


@dataclass
class ParsedEye:
    lines: dict[str, EyeLine] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)  # the "Kept as written" section, verbatim
    unread: list[tuple[int, str, str]] = field(default_factory=list)  # (line number, line, why)
    notes: list[str] = field(default_factory=list)


def entry_text(text: str) -> str:
    """How an entry's text is written on its bullet, so it reads back unchanged (see ``state/markdown.py``)."""
    at: set[int] = {i for i, c in enumerate(text) if c in "[]"}
    colon, level = _level_colon([(c, False) for c in text])
    if level is not None and colon is not None:
        at.add(colon)
    if text == PLACEHOLDER:
        at.add(0)
    return escape(text, _SPECIALS, only_at=at)


def read_eye(text: str) -> ParsedEye:
    """Every line of ``text``, placed."""
    parsed = ParsedEye()
    category: Category | None = None
    section = ""  # "" before any heading, "entries", "unknown", "kept"
    in_comment = False
    seen_content = False
    for lineno, raw in enumerate(lines_of(text), start=1):
        line = raw.strip()
        if in_comment:
            in_comment = "-->" not in line
            continue
        if is_our_comment(line):
            in_comment = "-->" not in line
            continue
        if not line:
            continue
        first, seen_content = not seen_content, True
        heading = _HEADING.match(line)
        if first and line.startswith("# ") and fold(line[2:]) == fold(TITLE):
            continue
        if heading and fold(heading["title"]) == fold(KEPT_TITLE):
            section = "kept"
            continue
        if heading:
            found = closest(heading["title"].rstrip(":："), HEADINGS)
            if found is not None:
                category, guessed = found
                section = "entries"
                if guessed:
                    parsed.notes.append(f"The heading '{heading['title']}' was read as '{CATEGORY_TITLES[category]}'.")
                continue
            if section != "kept":
                section = "unknown"
                why = f"'{heading['title']}' is not one of the eye's headings ({', '.join(CATEGORY_TITLES.values())})"
                parsed.unread.append((lineno, raw, why))
                continue
        if section == "kept":
            parsed.kept.append(raw)
        elif section == "unknown":
            parsed.unread.append((lineno, raw, "it is under a heading the eye does not know"))
        elif (bullet := _BULLET.match(line)) and category is not None:
            _read_bullet(parsed, bullet["body"], category, lineno, raw)
        else:
            parsed.unread.append((lineno, raw, "it is not a '- ' bullet under one of the eye's headings"))
    return parsed


def _read_bullet(parsed: ParsedEye, body: str, category: Category, lineno: int, raw: str) -> None:
    if body.strip() == PLACEHOLDER:
        return
    try:
        item = _entry(body, category)
    except ValueError as exc:
        parsed.unread.append((lineno, raw, str(exc)))
        return
    if item.key in parsed.lines:
        parsed.unread.append((lineno, raw, "the same entry is written twice"))
        return
    parsed.lines[item.key] = item


def _entry(body: str, category: Category) -> EyeLine:
    chars = decode(body, _SPECIALS)
    level: Level = "avoid" if category == "anti-preferences" else "prefer"
    colon, named = _level_colon(chars)
    if colon is not None and named is not None:
        level, chars = named, chars[colon + 1 :]
    count, contradictions, families = 1, 0, []
    while chars and chars[-1][0].isspace():
        chars.pop()
    if chars and chars[-1] == ("]", False):
        start = max((i for i, (c, esc) in enumerate(chars) if c == "[" and not esc), default=None)
        if start is not None:
            count, contradictions, families = _tag(plain(chars[start + 1 : -1]))
            chars = chars[:start]
    words = " ".join(plain(chars).split())
    if not words:
        raise ValueError("the bullet has no text")
    if len(words) > 300:
        raise ValueError("an entry is at most 300 characters")
    return EyeLine(category, level, words, count, contradictions, families)


def _level_colon(chars: list[tuple[str, bool]]) -> tuple[int | None, Level | None]:
    """Where the first unescaped colon is, and the level its prefix names ("AVOID", "ÉVITER"...), if any."""
    colon = next((i for i, (c, esc) in enumerate(chars[:26]) if c in ":：" and not esc), None)
    if colon is None:
        return None, None
    prefix = plain(chars[:colon]).strip()
    if not re.fullmatch(r"[^\W\d_]+", prefix):
        return colon, None
    return colon, _LEVEL_WORDS.get(fold(prefix))


def _tag(body: str) -> tuple[int, int, list[str]]:
    count, contradictions, families = 1, 0, []
    for part in (p.strip() for p in re.split(r"[;；]", body) if p.strip()):
        label, _, value = part.partition(":") if ":" in part else part.partition("：")
        if fold(label) in {"only", "seulement", "のみ"} and value:
            families = [re.sub(r"[^a-z0-9]+", "", f.casefold()) for f in re.split(r"[,、]", value) if f.strip()]
        elif fold(label) in {"contradicted", "contredit"} and value.strip().isdigit():
            contradictions = int(value.strip())
        elif (found := _count(part)) is not None:
            count = found
        else:
            raise ValueError(f"'[{part}]' is not a tag the eye knows (it writes [confirmed: 3 sessions])")
    return count, contradictions, families


def _count(part: str) -> int | None:
    if ours := _OUR_COUNT.fullmatch(part):  # as we write it: no need to guess
        return int(ours[1])
    numbers = re.findall(r"\d+", part)
    words = re.findall(r"[^\W\d_]+", part)
    if len(numbers) != 1 or not all(closest(w, dict.fromkeys(_COUNT_WORDS, True), 0.75) for w in words):
        return None
    return int(numbers[0])
