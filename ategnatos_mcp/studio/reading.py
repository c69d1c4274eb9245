"""Reading ``studio.md`` as an artist may have written it: the seed's tables, columns in any order, typos.

Models, LoRAs and Workflows are tables of entries; columns are matched by heading (extra columns are kept with
the entry). Environment and Active Instances are written by Ategnatos; lines the artist adds there, rows that
cannot be read and sections we do not know are "unread": the view keeps them exactly as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from ategnatos_mcp.state.markdown import (
    KEPT_TITLE,
    closest,
    decode,
    fold,
    is_our_comment,
    lines_of,
    plain,
    split_list,
    split_row,
)
from ategnatos_mcp.studio.models import LoraEntry, ModelEntry, WorkflowEntry

__all__ = ["KINDS", "ParsedStudio", "Row", "cell_text", "read_studio", "weight_range"]

Kind = Literal["model", "lora", "workflow"]
Section = Literal["", "model", "lora", "workflow", "environment", "instances", "unknown", "kept"]
KINDS: dict[Kind, type[BaseModel]] = {"model": ModelEntry, "lora": LoraEntry, "workflow": WorkflowEntry}

_SECTION_WORDS: dict[Section, tuple[str, ...]] = {
    "environment": ("environment", "environnement", "umgebung", "entorno", "環境", "setup", "machine"),
    "model": ("models", "model", "checkpoints", "modeles", "modelle", "modelos", "モデル"),
    "lora": ("loras", "lora", "lo ras", "lycoris", "ロラ"),
    "workflow": ("workflows", "workflow", "flux de travail", "ワークフロー"),
    "instances": ("active instances", "instances", "instances actives", "gpu instances", "インスタンス"),
}
_SECTIONS: dict[str, Section] = {fold(w): section for section, words in _SECTION_WORDS.items() for w in words}
_COLUMN_WORDS: dict[Kind, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "model": (
        ("name", ("name", "nom", "名前", "model", "modele")),
        ("kind", ("type", "kind", "種類", "タイプ")),
        ("base", ("base", "base model", "family", "famille", "ベース")),
        ("good_for", ("good for", "best for", "use", "bon pour", "用途", "得意")),
        ("location", ("location", "path", "where", "emplacement", "chemin", "場所", "パス")),
        ("settings", ("settings", "reglages", "parametres", "設定")),
        ("provenance", ("provenance", "source", "licence", "license", "origin", "出典")),
    ),
    "lora": (
        ("name", ("name", "nom", "名前", "lora")),
        ("trigger_words", ("trigger", "triggers", "trigger word", "trigger words", "declencheur", "トリガー")),
        ("weights", ("weight range", "weight", "weights", "poids", "重み", "ウェイト")),
        ("base_model", ("base", "base model", "famille", "ベース")),
        ("trained_on", ("trained on", "training data", "entraine sur", "学習データ")),
        ("location", ("location", "path", "where", "emplacement", "chemin", "場所", "パス")),
    ),
    "workflow": (
        ("name", ("name", "nom", "名前", "workflow")),
        ("description", ("description", "what it does", "desc", "説明")),
        ("location", ("location", "path", "where", "emplacement", "chemin", "場所", "パス")),
    ),
}  # fmt: skip
_COLUMNS: dict[Kind, dict[str, str]] = {
    kind: {fold(w): name for name, words in columns for w in words} for kind, columns in _COLUMN_WORDS.items()
}
_KIND_WORDS = {
    fold(w): kind
    for kind, words in (
        ("checkpoint", ("checkpoint", "checkpoints", "ckpt", "model", "base model", "modele", "チェックポイント")),
        ("vae", ("vae",)),
        ("upscaler", ("upscaler", "upscale", "upscale model", "esrgan")),
        ("controlnet", ("controlnet", "control net")),
        ("embedding", ("embedding", "embeddings", "textual inversion", "ti")),
        ("text-encoder", ("text encoder", "textencoder", "clip", "t5")),
        ("other", ("other", "autre", "その他")),
    )
    for w in words
}
_OURS = {"- Not detected yet (ask Claude to run studio_detect).", "- (none registered)"}
_NUMBER = r"[-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^\s*(?P<low>{_NUMBER})\s*(?:(?:-|–|—|~|〜|to|à|a|bis)\s*(?P<high>{_NUMBER}))?\s*$")
_HEADING = re.compile(r"^#{2,6}\s+(?P<title>.+?)\s*#*\s*$")
_SEPARATOR = re.compile(r"^:?-+:?$")


@dataclass
class Row:
    """One readable table row: an entry's fields as the view states them, and columns we do not know."""

    kind: Kind
    name: str
    fields: dict[str, Any]
    other: dict[str, str]

    @property
    def key(self) -> tuple[Kind, str]:
        return self.kind, self.name.casefold()

    def facts(self) -> object:
        return self.name, sorted((k, repr(v)) for k, v in self.fields.items()), sorted(self.other.items())


@dataclass
class ParsedStudio:
    rows: dict[tuple[Kind, str], Row] = field(default_factory=dict)
    machine: list[tuple[int, str, str]] = field(default_factory=list)  # lines of the sections we write, with why
    kept: list[str] = field(default_factory=list)
    unread: list[tuple[int, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def cell_text(raw: str) -> str:
    return plain(decode(raw, "|"))


def weight_range(text: str) -> tuple[float, float] | None:
    """``0.6-0.8`` (or ``0.7``, ``-0.5 to 0.5``, ``0,6–0,8``) as two numbers; None when unreadable."""
    if not text.strip():
        return 0.6, 1.0
    found = _RANGE.match(text)
    if found is None:
        return None
    low = float(found["low"].replace(",", "."))
    return low, float((found["high"] or found["low"]).replace(",", "."))


class _Table:
    def __init__(self, kind: Section, header: list[str]) -> None:
        self.kind = kind
        self.header = header
        self.fields: list[str | None] = []
        self.separator_seen = False
        if kind in _COLUMNS:
            taken: set[str] = set()
            for title in header:
                found = closest(cell_text(title), _COLUMNS[kind])  # type: ignore[index]
                name = found[0] if found and found[0] not in taken else None
                taken.add(name or "")
                self.fields.append(name)


def read_studio(text: str) -> ParsedStudio:
    """Every line of ``text``, placed."""
    parsed = ParsedStudio()
    section: Section = ""
    title = ""
    table: _Table | None = None
    in_comment = seen = False
    for lineno, raw in enumerate(lines_of(text), start=1):
        line = raw.strip()
        if in_comment or is_our_comment(line):
            in_comment = "-->" not in line
            continue
        if not line:
            continue
        first, seen = not seen, True
        if first and fold(line) == "studio" and line.startswith("# "):
            continue
        heading = _HEADING.match(line)
        if heading and fold(heading["title"]) == fold(KEPT_TITLE):
            section, table = "kept", None
            continue
        if heading and (found := closest(heading["title"].rstrip(":："), _SECTIONS)):
            section, table, title = found[0], None, heading["title"]
            if found[1]:
                parsed.notes.append(f"The heading '{heading['title']}' was read as '{section}'.")
            continue
        if section == "kept":
            parsed.kept.append(raw)
            continue
        if heading:
            section, table = "unknown", None
            parsed.unread.append((lineno, raw, f"'{heading['title']}' is not a section of studio.md"))
            continue
        table = _read_body(parsed, section, title, table, lineno, raw)
    return parsed


def _read_body(
    parsed: ParsedStudio, section: Section, title: str, table: _Table | None, lineno: int, raw: str
) -> _Table | None:
    """One line under a heading; returns the table it continues (None once a non-row line ends a table)."""
    line = raw.strip()
    cells = split_row(line)
    table = None if cells is None else table
    if section in ("environment", "instances"):
        if line in _OURS or (cells is not None and _is_header_or_separator(cells, table)):
            return table or (_Table(section, cells) if cells is not None else None)
        why = "is filled in by studio_detect" if section == "environment" else "lists the rentals Ategnatos tracks"
        parsed.machine.append((lineno, raw, f"the '{title}' section {why}"))
    elif section in ("model", "lora", "workflow") and cells is not None:
        return _read_row(parsed, section, table, cells, lineno, raw)
    elif line in _OURS:
        pass
    elif section == "unknown":
        parsed.unread.append((lineno, raw, "it is under a heading studio.md does not know"))
    else:
        where = f"under '{title}'" if section else "before the first heading"
        parsed.unread.append((lineno, raw, f"it is not a table row {where}"))
    return table


def _is_header_or_separator(cells: list[str], table: _Table | None) -> bool:
    return table is None or all(_SEPARATOR.match(c) for c in cells)


def _read_row(
    parsed: ParsedStudio, kind: Kind, table: _Table | None, cells: list[str], lineno: int, raw: str
) -> _Table | None:
    if table is None:
        return _Table(kind, cells)
    if not table.separator_seen and all(_SEPARATOR.match(c) for c in cells):
        table.separator_seen = True
        return table
    if "name" not in table.fields:
        parsed.unread.append((lineno, raw, "its table has no Name column"))
        return table
    if len(cells) > len(table.header):
        parsed.unread.append((lineno, raw, f"it has {len(cells)} cells but the table has {len(table.header)} columns"))
        return table
    cells = cells + [""] * (len(table.header) - len(cells))
    try:
        row = _row(kind, table, cells)
    except ValueError as exc:
        parsed.unread.append((lineno, raw, str(exc)))
        return table
    if row.key in parsed.rows:
        parsed.unread.append((lineno, raw, f"'{row.name}' is listed twice"))
    else:
        parsed.rows[row.key] = row
    return table


def _row(kind: Kind, table: _Table, cells: list[str]) -> Row:
    fields: dict[str, Any] = {}
    other: dict[str, str] = {}
    for title, name, cell in zip(table.header, table.fields, cells, strict=True):
        if name is None:
            if cell_text(cell):
                other[cell_text(title)] = cell_text(cell)
        elif name == "trigger_words":
            fields[name] = split_list(cell)
        elif name == "weights":
            weights = weight_range(cell_text(cell))
            if weights is None:
                raise ValueError(f"the weight range '{cell_text(cell)}' should look like 0.6-0.8")
            fields["weight_min"], fields["weight_max"] = weights
        elif name == "kind":
            kind_word = cell_text(cell)
            found = _KIND_WORDS.get(fold(kind_word)) if kind_word else "checkpoint"
            if found is None:
                raise ValueError(f"'{kind_word}' is not a model type ({', '.join(sorted(set(_KIND_WORDS.values())))})")
            fields[name] = found
        else:
            fields[name] = " ".join(cell_text(cell).split())
    name = fields.pop("name")
    if not name:
        raise ValueError("the row has no name")
    if fields.get("weight_min", 0) > fields.get("weight_max", 0):
        raise ValueError("the weight range is upside down")
    try:
        KINDS[kind].model_validate({"name": name, **fields, "other_columns": other})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc
    return Row(kind, name, fields, other)
