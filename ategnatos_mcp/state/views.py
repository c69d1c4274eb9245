"""How the store reads a markdown view against its document (blocking helpers; the store runs them in threads).

A view is in one of these states, decided by comparing its bytes with the record of our last render
(``.state/<doc>.view.json``: the document revision and the exact text we wrote):

- missing: rendered again when the document exists;
- as we wrote it, for the current revision: nothing to do;
- as we wrote it, for an older revision (a kill between the JSON write and the render): rendered again;
- edited by hand: the artist's changes (their render vs their edit) are applied to the current document, so an
  entry the document gained after that render is kept. An edit that empties the view or removes most entries at
  once is held back: kept as a copy, not applied, said plainly; ``accept_held_edit`` applies it on request;
- not written by us (no record, or no document): read as the artist's own file, only adding and changing
  entries; a dated copy is kept before it is first rewritten;
- unreadable (not UTF-8, too big, or refused by the view): kept beside the new render, said plainly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from ategnatos_mcp.state.atomic import copy_name, preserve, write_text_atomic

__all__ = ["HOLD_MIN_REMOVED", "Merge", "View", "ViewOutcome", "examine_view"]

D = TypeVar("D")

HOLD_MIN_REMOVED = 3  # removing this many entries at once is always taken as meant
MAX_VIEW_BYTES = 5_000_000
_SHOWN = 8


@dataclass
class Merge(Generic[D]):
    """What a hand edit does to the document: the result, and counts and words for the artist."""

    doc: D
    before: int = 0  # entries in the view as we rendered it (0 for a file we did not write)
    after: int = 0  # entries in the edited view
    removed: list[str] = field(default_factory=list[str])  # labels of the entries the edit takes out
    changed: int = 0  # entries added or changed
    unread: list[str] = field(default_factory=list[str])  # lines newly kept as written, described
    notes: list[str] = field(default_factory=list[str])  # anything else worth saying (a heading read as another)


@dataclass(frozen=True)
class View(Generic[D]):
    """A markdown rendering of one document, kept in sync by the store.

    ``parse(text, current)`` returns the document a hand-edited view describes, or raises ``ValueError`` with a
    plain reason. A view that can be edited entry by entry also gives ``merge(text, base, current)``: the
    changes between ``base`` (the text we rendered, None for a file we did not write) and ``text`` applied to
    ``current``. ``model`` lets the store bring the view in line with its document at start-up; ``accept_with``
    names the call that applies an edit held back for removing too much.
    """

    filename: str
    render: Callable[[D], str]
    parse: Callable[[str, D], D]
    merge: Callable[[str, str | None, D], Merge[D]] | None = None
    model: type[Any] | None = None
    accept_with: str = "the 'accept_edit' action"  # how the artist confirms a held-back edit, in words


class ViewRecord(BaseModel):
    """``.state/<doc>.view.json``: what we last wrote to the view, for which revision."""

    model_config = ConfigDict(extra="forbid")

    revision: int | None  # None: recovered from an older release's hash file
    text: str


class HeldEdit(BaseModel):
    """``.state/<doc>.held.json``: an edit not applied because it removed too much at once."""

    model_config = ConfigDict(extra="forbid")

    copy_name: str
    base: str | None
    removed: list[str]
    at: datetime


@dataclass
class ViewOutcome(Generic[D]):
    """The document once the view is taken into account, and what a commit must do on disk."""

    doc: D
    now: datetime  # when it was examined: the kept copies are named after it, as the notices say
    changed: bool = False  # the document differs from the stored one
    render: bool = False  # the view must be (re)written even if nothing else changes
    sha: str = ""  # of the view's bytes as examined (notices are given once per version of the file)
    backup: Path | None = None  # first rewrite of a file we did not write: keep it under this name
    aside: Path | None = None  # an edit not applied: keep it under this name
    held: HeldEdit | None = None
    said: list[str] = field(default_factory=list[str])  # what the view says (given once, also on reads)
    done: list[str] = field(default_factory=list[str])  # what the commit does with files (only when committing)


def record_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.view.json"


def held_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.held.json"


def legacy_hash_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.view.sha256"


def _read_record_files(state_dir: Path, name: str) -> tuple[bytes | None, str | None]:
    """The record (or an older release's hash of the view), read before the view (see ``examine_view``)."""
    try:
        return record_path(state_dir, name).read_bytes(), None
    except FileNotFoundError:
        pass
    try:
        return None, legacy_hash_path(state_dir, name).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, None


def _record(raw: bytes | None, legacy_hash: str | None, view_text: str) -> ViewRecord | None:
    if raw is not None:
        try:
            return ViewRecord.model_validate_json(raw)
        except ValueError:
            return None  # a damaged record: treat the view as one we did not write (nothing is removed then)
    if legacy_hash is not None and _sha256(view_text) == legacy_hash:
        return ViewRecord(revision=None, text=view_text)
    return None


def read_held(state_dir: Path, name: str) -> HeldEdit | None:
    try:
        return HeldEdit.model_validate_json(held_path(state_dir, name).read_bytes())
    except FileNotFoundError:
        return None


def examine_view(
    view: View[Any],
    root: Path,
    state_dir: Path,
    name: str,
    load: Callable[[], tuple[Any, bool]],
    now: datetime,
) -> ViewOutcome[Any]:
    """Compare the view with its record and document; decide, without writing anything, what should happen.

    ``load`` gives the document and whether it exists. The files are read in the reverse order of a write (record,
    view, document), so a read that races a writer without its lock sees a stale view, never a false edit.
    """
    record_raw, legacy_hash = _read_record_files(state_dir, name)
    path = root / view.filename
    raw: bytes | None = None
    reason = ""
    try:
        size = path.stat().st_size
        if size > MAX_VIEW_BYTES:
            reason = "it is too big to be a view"
        else:
            raw = path.read_bytes()
    except FileNotFoundError:
        doc, exists = load()
        return ViewOutcome(doc=doc, now=now, render=exists)
    except OSError:
        return ViewOutcome(doc=load()[0], now=now)  # a folder or an unreadable file under that name: left alone
    doc, doc_exists = load()
    out: ViewOutcome[Any] = ViewOutcome(doc=doc, now=now)
    if raw is None:
        out.sha = f"size:{size}"
        return _aside(out, view, path, now, reason)
    out.sha = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _aside(out, view, path, now, "it is not UTF-8 text")
    record = _record(record_raw, legacy_hash, text)
    if doc_exists and record is not None and text == record.text:
        if record.revision is None or record.revision < doc.revision:
            out.render = True  # stale: the last render was lost to a crash
        elif record.revision > doc.revision:
            return _aside(out, view, path, now, f"it shows a later state than .state/{name}.json")
        return out
    foreign = not doc_exists or record is None
    if not foreign and text == view.render(doc):
        out.render = True  # the render landed but its record did not
        return out
    return _merge(out, view, path, now, text, None if foreign or record is None else record.text)


def _merge(out: ViewOutcome[Any], view: View[Any], path: Path, now: datetime, text: str, base: str | None) -> Any:
    name = view.filename
    try:
        merged: Merge[Any] = view.merge(text, base, out.doc) if view.merge else Merge(doc=view.parse(text, out.doc))
    except ValueError as exc:
        return _aside(out, view, path, now, str(exc))
    removed = len(merged.removed)
    if merged.before > 0 and (merged.after == 0 or (removed > HOLD_MIN_REMOVED and 2 * removed > merged.before)):
        out.render = True
        out.aside = _free_name(path, "edited", now)
        out.held = HeldEdit(copy_name=out.aside.name, base=base, removed=merged.removed, at=now)
        lost = "every entry" if merged.after == 0 else f"{removed} of its {merged.before} entries"
        out.said.append(
            f"{name} lost {lost} at once. That looks like a file cut short by an editor or a sync, so the edit "
            f"was not applied and nothing was removed ({_listing(merged.removed)})."
        )
        out.done.append(
            f"{name} shows every entry again; the file as it was is kept as {out.aside.name}. If the artist did "
            f"mean to remove them, apply that edit with {view.accept_with}, or remove entries a few at a time."
        )
        return out
    out.doc, out.changed, out.render = merged.doc, True, True
    if base is None:
        out.backup = _free_name(path, "backup", now)
        out.said.append(f"Read your own {name}: {merged.after} entries taken into the grimoire.")
        out.done.append(f"A copy of {name} as you wrote it is kept as {out.backup.name}.")
    else:
        parts = [f"{merged.changed} added or changed"] if merged.changed else []
        parts += [f"{removed} removed ({_listing(merged.removed)})"] if removed else []
        out.said.append(f"Imported your hand edits of {name}" + (f": {', '.join(parts)}." if parts else "."))
    out.said += merged.notes
    if merged.unread:
        count = len(merged.unread)
        out.said.append(
            f"{count} line{'s' if count > 1 else ''} of {name} could not be read and "
            f"{'are' if count > 1 else 'is'} kept exactly as written in its last section, 'Kept as written': "
            f"{_listing(merged.unread, sep='; ')}. Move a line under a heading, in the format shown there, to use it."
        )
    return out


def _aside(out: ViewOutcome[Any], view: View[Any], path: Path, now: datetime, reason: str) -> Any:
    out.render = True
    out.aside = _free_name(path, "edited", now)
    out.said.append(f"Your {view.filename} could not be read ({reason}), so nothing in it was taken.")
    out.done.append(
        f"It is kept as {out.aside.name} and {view.filename} was rendered fresh. Copy your changes over in the "
        "documented format."
    )
    return out


def commit_files(out: ViewOutcome[Any], view: View[Any], root: Path, state_dir: Path, name: str) -> None:
    """The copies an outcome asks for, made before the view is rewritten (names fixed up if taken meanwhile)."""
    path = root / view.filename
    for label, wanted in (("backup", out.backup), ("edited", out.aside)):
        if wanted is None:
            continue
        kept = preserve(path, label, out.now)
        if kept != wanted:
            out.done = [line.replace(wanted.name, kept.name) for line in out.done]
            if out.held is not None and label == "edited":
                out.held.copy_name = kept.name
    if out.held is not None:
        write_text_atomic(held_path(state_dir, name), out.held.model_dump_json(indent=2) + "\n")


def write_view(view: View[Any], root: Path, state_dir: Path, name: str, doc: Any) -> None:
    """Render the view, then record what was written (a kill in between is recognised as a stale record)."""
    rendered = view.render(doc)
    write_text_atomic(root / view.filename, rendered)
    write_text_atomic(record_path(state_dir, name), ViewRecord(revision=doc.revision, text=rendered).model_dump_json())
    legacy_hash_path(state_dir, name).unlink(missing_ok=True)


def _free_name(path: Path, label: str, now: datetime) -> Path:
    n = 1
    while copy_name(path, label, now, n).exists():
        n += 1
    return copy_name(path, label, now, n)


def _listing(items: list[str], sep: str = ", ") -> str:
    shown = sep.join(items[:_SHOWN])
    return shown + (f"{sep}and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
