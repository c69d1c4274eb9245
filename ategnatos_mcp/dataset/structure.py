"""Lay flat folders out as kohya ``{repeats}_{name}`` folders: hard links where possible, else copies.

Idempotent: a rerun with the same inputs changes nothing. A file in the output that no longer matches
its source (e.g. a caption rewritten since) is moved aside into the output's ``quarantine/``, never
deleted, and replaced by the current one. A layout cut short by a kill is named as unfinished (a hidden note in
the output, until every file is in place) and a rerun finishes it; a copied file appears whole or not at all.
"""

from __future__ import annotations

import errno
import filecmp
import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ategnatos_mcp.dataset.models import StructureResult
from ategnatos_mcp.dataset.scan import KOHYA_FOLDER, QUARANTINE_DIR, FileEntry, scan_dataset
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.state.atomic import remove_leftover_temp_files, temp_beside, write_text_atomic

__all__ = [
    "UNFINISHED",
    "Concept",
    "Protected",
    "build_structure",
    "check_output",
    "compute_repeats",
    "unfinished_layout",
]


@dataclass
class Concept:
    source: Path
    name: str
    repeats: int | None = None


def compute_repeats(images: int, *, target_steps: int, epochs: int) -> int:
    """``ceil(target_steps / (images x epochs))``, at least 1."""
    if images <= 0:
        return 1
    return max(1, math.ceil(target_steps / (images * max(1, epochs))))


def _files_of(concept: Concept, notes: list[str], roots: Sequence[Path] | None) -> list[FileEntry]:
    scan = scan_dataset(concept.source, roots=roots, tidy=True)
    if scan.outside_links:
        names = ", ".join(e.rel for e in scan.outside_links[:5])
        notes.append(
            f"{len(scan.outside_links)} linked file(s) in {concept.source.name} point outside the project and were "
            f"left out: {names}. Copy them into the folder to include them."
        )
    if scan.layout != "flat":
        raise InvalidRequestError(
            f"'{concept.source}' is already laid out in kohya folders ({', '.join(scan.concepts)}).",
            hint="Point at the plain folder of images, or train from this folder as it is.",
        )
    top = [e for e in scan.images if "/" not in e.rel]
    nested = len(scan.images) - len(top)
    if nested:
        notes.append(
            f"{nested} image(s) in subfolders of {concept.source.name} were left out; move them up to include them."
        )
    stems = {e.stem_key for e in top}
    captions = [e for e in scan.captions if "/" not in e.rel and e.stem_key in stems]
    return top + captions


class _Placer:
    def __init__(self, output: Path, when: datetime) -> None:
        self.output = output
        self.aside = output / QUARANTINE_DIR / f"replaced-{when:%Y%m%dT%H%M%S}"
        self.linked = self.copied = self.unchanged = 0
        self.moved_aside: list[str] = []

    def place(self, src: Path, dst: Path) -> None:
        if dst.exists():
            if _same(src, dst):
                self.unchanged += 1
                return
            rel = dst.relative_to(self.output)
            os.rename(dst, _free_path(self.aside / rel))
            self.moved_aside.append(str(rel))
        try:
            try:
                os.link(src, dst)
                self.linked += 1
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EACCES):
                    raise
                _copy_new(src, dst)
                self.copied += 1
        except FileExistsError:
            if not _same(src, dst):
                raise
            self.unchanged += 1  # another conversation laying out the same folder placed it a moment ago


def _same(src: Path, dst: Path) -> bool:
    return os.path.samefile(src, dst) or filecmp.cmp(src, dst, shallow=False)


def _copy_new(src: Path, dst: Path) -> None:
    """Copy ``src`` to the new name ``dst``: the whole file or nothing there (a copy cut short by a kill leaves only a
    hidden temp file, removed the next time the folder is used), and never over a file that appeared meanwhile."""
    with src.open("rb") as source, temp_beside(dst) as (fh, tmp):
        shutil.copyfileobj(source, fh, 1024 * 1024)
        fh.flush()
        shutil.copystat(src, tmp)
        os.link(tmp, dst)


UNFINISHED = ".ategnatos-layout-unfinished.json"  # in the output while a layout is being made


def unfinished_layout(folder: Path) -> str | None:
    """When a layout being made in ``folder`` (or in the layout ``folder`` is a concept of) was cut short: when it
    was started, in words; None when it was finished (or never made by us)."""
    for place in (folder, folder.parent):
        try:
            note = json.loads((place / UNFINISHED).read_text(encoding="utf-8"))
            return str(note.get("started", "at an unknown time"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, AttributeError):
            return "at an unknown time"
    return None


def _free_path(path: Path) -> Path:
    """``path``, or ``name-2.ext``, ``name-3.ext``... when taken: a file moved aside never lands on an earlier one
    (two runs within one second share the aside folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = path, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _existing_folder(output: Path, name: str) -> Path | None:
    if not output.is_dir():
        return None
    for child in sorted(output.iterdir()):
        m = KOHYA_FOLDER.match(child.name)
        if child.is_dir() and m and m.group(2) == name:
            return child
    return None


_HINT = "Choose a new folder for the kohya layout next to the images, e.g. workspace/datasets/<name>-kohya."


@dataclass(frozen=True)
class Protected:
    """A folder no kohya layout goes in: what it holds in plain words, and whether its subfolders are refused too."""

    folder: Path
    what: str
    with_subfolders: bool = False


def check_output(output: Path, concepts: Sequence[Concept], protected: Sequence[Protected]) -> None:
    """Refuse an output that makes no sense: one of Ategnatos' folders, a source or a folder holding sources, or a
    folder that already holds other things than a kohya layout.

    Raises:
        InvalidRequestError: the output is one of those.
    """
    out = output.resolve()
    for p in protected:
        folder = p.folder.resolve()
        if out == folder:
            raise InvalidRequestError(f"The output {output} is {p.what}.", hint=_HINT)
        if p.with_subfolders and out.is_relative_to(folder):
            raise InvalidRequestError(f"The output {output} is inside {p.what}.", hint=_HINT)
    for c in concepts:
        source = c.source.resolve()
        if out.is_relative_to(source):
            raise InvalidRequestError(
                f"The output folder is inside the source folder {c.source}.",
                hint="Choose an output folder next to the source, e.g. workspace/datasets/<name>-kohya.",
            )
        if source.is_relative_to(out):
            raise InvalidRequestError(
                f"The output {output} holds the source folder {c.source}: the layout would be built around your images.",
                hint=_HINT,
            )
    if out.is_dir():
        other = sorted(
            p.name
            for p in out.iterdir()
            if not p.name.startswith(".")
            and p.name != QUARANTINE_DIR
            and not (p.is_dir() and KOHYA_FOLDER.match(p.name))
        )
        if other:
            raise InvalidRequestError(
                f"The output {output} already holds other things than a kohya layout ({', '.join(other[:5])}).",
                hint=_HINT,
            )


def build_structure(
    output: Path,
    concepts: list[Concept],
    *,
    target_steps: int = 1500,
    epochs: int = 10,
    when: datetime,
    roots: Sequence[Path] | None = None,
    protected: Sequence[Protected] = (),
    repeats_for: Callable[[int], int] | None = None,
) -> StructureResult:
    """Create or update ``output/{repeats}_{name}/`` for each concept. Blocking: run it in a worker thread.

    ``roots``: the project's folders (linked files pointing outside them are left out); ``protected``: see
    ``check_output``. A concept without its own repeats gets ``repeats_for(images)`` (e.g. a training preset's
    rule), else ``compute_repeats`` from ``target_steps`` and ``epochs``.

    Raises:
        InvalidRequestError: a source is already kohya-shaped, the output makes no sense (see ``check_output``) or
            is a file, names clash.
    """
    names = [c.name for c in concepts]
    if len(set(names)) != len(names):
        raise InvalidRequestError("Two concepts have the same name.", hint="Give each concept its own name.")
    check_output(output, concepts, protected)
    existing = next((p for p in (output, *output.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise InvalidRequestError(
            f"The output {output} is a file, not a folder."
            if existing == output
            else f"The output {output} cannot be made: {existing} is a file, not a folder.",
            hint="Choose a new or existing folder for the kohya layout, e.g. workspace/datasets/<name>-kohya.",
        )
    notes: list[str] = []
    earlier = unfinished_layout(output) if output.is_dir() else None
    if earlier is not None:
        notes.append(f"The layout started here {earlier} was cut short; this run finishes it.")
    output.mkdir(parents=True, exist_ok=True)
    remove_leftover_temp_files(output)  # a copy a kill cut short
    # Says "unfinished" until every file is in place: a kill part-way leaves it, and the audit names the layout as
    # cut short (with the call that finishes it) instead of passing a folder with images missing.
    write_text_atomic(output / UNFINISHED, json.dumps({"started": f"on {when:%Y-%m-%d at %H:%M} UTC"}) + "\n")
    placer = _Placer(output, when)
    result = StructureResult(
        output=str(output), concepts={}, repeats={}, linked=0, copied=0, unchanged=0, method="none", notes=notes
    )
    for concept in concepts:
        files = _files_of(concept, notes, roots)
        images = sum(1 for f in files if not f.rel.endswith((".txt", ".caption")))
        repeats = concept.repeats or (
            repeats_for(images)
            if repeats_for is not None
            else compute_repeats(images, target_steps=target_steps, epochs=epochs)
        )
        folder = output / f"{repeats}_{concept.name}"
        previous = _existing_folder(output, concept.name)
        if previous is not None and previous != folder:
            os.rename(previous, folder)
            notes.append(f"Renamed {previous.name} to {folder.name} (repeats changed).")
        folder.mkdir(parents=True, exist_ok=True)
        for entry in files:
            placer.place(entry.path, folder / entry.rel)
        result.concepts[folder.name] = images
        result.repeats[folder.name] = repeats
    (output / UNFINISHED).unlink(missing_ok=True)
    result.linked, result.copied, result.unchanged = placer.linked, placer.copied, placer.unchanged
    if placer.moved_aside:
        notes.append(f"{len(placer.moved_aside)} outdated file(s) moved aside to {placer.aside.relative_to(output)}.")
    result.notes = notes
    result.method = (
        "mixed"
        if placer.linked and placer.copied
        else "hardlink"
        if placer.linked
        else "copy"
        if placer.copied
        else "none"
    )
    return result
