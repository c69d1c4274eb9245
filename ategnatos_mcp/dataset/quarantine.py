"""Move files aside into ``<dataset>/quarantine/<batch>/``, all or nothing; undo puts the exact bytes back.

Nothing is ever deleted. The rules that make every move undoable, even after an error or a kill part-way:

1. Plan first: every file is checked (inside the dataset, a real file or a link within the project) and
   hashed before anything moves; files that cannot be moved are named in ``skipped`` and left alone.
2. Journal first: the manifest lists the whole batch as *pending* before the first move.
3. Move (a rename inside the dataset's own disk, never over an existing file); a caption travels with its image.
   If a move fails, every file moved so far goes back and the batch is dropped from the manifest.
4. Mark the batch done. A batch still pending when the manifest is read again was cut short: its files are
   wherever the kill left them, and undo brings back those in quarantine (the others never left).

Undo checks each file's sha256 against the manifest and never overwrites a file that has appeared since.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Generator, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from ategnatos_mcp.dataset.captions import caption_files_by_stem
from ategnatos_mcp.dataset.models import QuarantineEntry, QuarantineResult
from ategnatos_mcp.dataset.scan import QUARANTINE_DIR, scan_dataset
from ategnatos_mcp.errors import BusyError, InvalidRequestError, NotFoundError, StateError
from ategnatos_mcp.paths import inside_roots
from ategnatos_mcp.state import write_text_atomic
from ategnatos_mcp.state.claims import hold_folder

__all__ = ["BUSY_WAIT_SECONDS", "MANIFEST_NAME", "quarantine_files", "read_manifest", "undo_quarantine"]

MANIFEST_NAME = "manifest.json"
BUSY_WAIT_SECONDS = 5.0  # a quarantine or undo takes seconds: wait that long for another conversation's


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(root: Path) -> list[QuarantineEntry]:
    """Every quarantine move recorded for this dataset (oldest first).

    Raises:
        StateError: the manifest exists but cannot be read.
    """
    path = root / QUARANTINE_DIR / MANIFEST_NAME
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [QuarantineEntry.model_validate(item) for item in raw["entries"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(
            f"The quarantine manifest {path} cannot be read; nothing was moved.",
            document=str(path),
            hint="Restore it from a backup, or move the files in quarantine/ back by hand.",
        ) from exc


def _write_manifest(root: Path, entries: Sequence[QuarantineEntry]) -> Path:
    path = root / QUARANTINE_DIR / MANIFEST_NAME
    payload = {"note": "Files moved here by Ategnatos; undo with dataset_dedupe action='undo'.", "entries": []}
    payload["entries"] = [e.model_dump(mode="json", exclude_defaults=True) for e in entries]
    write_text_atomic(path, json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    return path


def _move_no_clobber(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        raise FileExistsError(str(dst))
    os.rename(src, dst)


def _dataset_path(root: Path, rel: str) -> tuple[str, Path]:
    """The clean relative path and the path of the entry itself (a link is moved, not what it points to)."""
    clean = rel.strip().replace("\\", "/").removeprefix("./")
    parts = Path(clean).parts
    if not clean or Path(clean).is_absolute() or ".." in parts or parts[:1] == (QUARANTINE_DIR,):
        raise InvalidRequestError(
            f"'{rel}' is not a file of this dataset.",
            hint="Use paths relative to the dataset folder, as dataset_audit and dataset_dedupe list them.",
        )
    path = root / clean
    if not path.parent.resolve().is_relative_to(root.resolve()):
        raise InvalidRequestError(f"'{rel}' is not a file of this dataset.", hint="Use paths the audit listed.")
    return clean, path


def _refusal(path: Path, roots: Sequence[Path] | None) -> str | None:
    """Why ``path`` cannot be moved, or None."""
    if not (path.exists() or path.is_symlink()):
        return "not found"
    if path.is_symlink():
        if not path.exists():
            return "a link that points nowhere; left alone"
        if roots is not None and not inside_roots(path, roots):
            return "a link to a file outside the project; left alone"
    if not path.is_file():
        return "not a file"
    return None


def _plan(
    root: Path, files: Mapping[str, str], batch: str, roots: Sequence[Path] | None, waiting: Mapping[str, str]
) -> tuple[list[QuarantineEntry], list[str]]:
    """The moves (captions travel with their images) and the files left alone, each with why; ``waiting``: the
    files already in quarantine, by batch."""
    captions = caption_files_by_stem(scan_dataset(root, roots=roots, tidy=True))
    cleaned = [(*_dataset_path(root, rel), reason) for rel, reason in files.items()]  # refuses before anything moves
    plan: list[QuarantineEntry] = []
    skipped: list[str] = []
    taken: set[str] = set()
    for rel, path, reason in sorted(cleaned):
        problem = _refusal(path, roots)
        if problem == "not found" and rel in waiting:
            problem = f"already in quarantine (batch {waiting[rel]})"
        if problem is not None:
            skipped.append(f"{rel}: {problem}")
            continue
        moving: list[tuple[str, str, str | None]] = [(rel, reason, None)]
        caption = captions.get(rel.rsplit(".", 1)[0])
        if caption is not None and caption.rel != rel:
            moving.append((caption.rel, f"caption of {rel}", rel))
        for item_rel, item_reason, caption_of in moving:
            if item_rel in taken:
                continue
            taken.add(item_rel)
            plan.append(
                QuarantineEntry(
                    original=item_rel,
                    quarantined=f"{QUARANTINE_DIR}/{batch}/{item_rel}",
                    sha256=_sha256(root / item_rel),
                    reason=item_reason,
                    batch=batch,
                    caption_of=caption_of,
                    pending=True,
                )
            )
    return plan, skipped


def _settle(root: Path, entries: list[QuarantineEntry]) -> list[QuarantineEntry]:
    """Entries of a batch cut short by a kill: those in quarantine count as moved; the rest never left."""
    settled = []
    for e in entries:
        if e.pending:
            if not (root / e.quarantined).exists():
                continue
            e.pending = False
        settled.append(e)
    return settled


def _new_batch(root: Path, entries: list[QuarantineEntry], when: datetime) -> str:
    batch = when.strftime("%Y%m%dT%H%M%S")
    while any(e.batch == batch for e in entries) or (root / QUARANTINE_DIR / batch).exists():
        batch += "b"
    return batch


def quarantine_files(
    root: Path,
    files: Mapping[str, str],
    *,
    when: datetime,
    roots: Sequence[Path] | None = None,
    wait_seconds: float = BUSY_WAIT_SECONDS,
) -> QuarantineResult:
    """Move ``files`` (dataset-relative path -> reason) and their captions into a new quarantine batch, all or none.

    ``roots``: the project's roots; a link pointing outside them is left alone. Blocking: run it in a worker thread.
    One move into or out of a dataset's quarantine at a time, across server processes (``wait_seconds`` for another).

    Raises:
        InvalidRequestError: a path is outside the dataset (nothing is moved).
        StateError: a move failed; every file moved so far was put back.
        BusyError: another conversation kept moving files of this dataset for longer than ``wait_seconds``.
    """
    with _one_at_a_time(root, wait_seconds):
        return _quarantine(root, files, when, roots)


@contextlib.contextmanager
def _one_at_a_time(root: Path, wait_seconds: float) -> Generator[None]:
    # The manifest is read, changed and written again: two servers doing that at once would each write their own
    # batch over the other's, leaving files in quarantine that no manifest lists.
    if not root.is_dir():
        yield  # nothing to move here; the caller says so
        return
    with hold_folder(root, refuse=_busy, wait_seconds=wait_seconds):
        yield


def _busy() -> BusyError:
    return BusyError(
        "Another conversation is moving files of this dataset into or out of quarantine right now; this call moved "
        "nothing.",
        hint="Make the same call again in a moment (that move takes seconds).",
    )


def _quarantine(root: Path, files: Mapping[str, str], when: datetime, roots: Sequence[Path] | None) -> QuarantineResult:
    entries = _settle(root, read_manifest(root))
    batch = _new_batch(root, entries, when)
    waiting = {e.original: e.batch for e in entries if not e.restored}
    plan, skipped = _plan(root, files, batch, roots, waiting)
    result = QuarantineResult(action="quarantine", batch=batch, skipped=skipped)
    if not plan:
        return result
    _write_manifest(root, entries + plan)  # the journal: written before the first move
    done: list[QuarantineEntry] = []
    entry = plan[0]
    try:
        for entry in plan:
            _move_no_clobber(root / entry.original, root / entry.quarantined)
            done.append(entry)
    except OSError as exc:
        _roll_back(root, done, entries)
        _write_manifest(root, entries)
        _prune_empty(root / QUARANTINE_DIR / batch)
        raise StateError(
            f"Moving {entry.original} into quarantine failed ({exc.strerror or exc}); the {len(done)} file(s) "
            "moved before it were put back, so the dataset is as it was.",
            document=str(root / QUARANTINE_DIR / MANIFEST_NAME),
            hint="Check that the dataset folder can be written to, then try again.",
        ) from exc
    for entry in plan:
        entry.pending = False
    result.manifest = str(_write_manifest(root, entries + plan))
    result.moved = [e.original for e in plan]
    return result


def _roll_back(root: Path, done: list[QuarantineEntry], earlier: list[QuarantineEntry]) -> None:
    for k in range(len(done) - 1, -1, -1):
        try:
            os.rename(root / done[k].quarantined, root / done[k].original)
        except OSError as exc:
            # Cannot even put it back: keep the journal of what is still in quarantine, so undo finds it.
            _write_manifest(root, earlier + done[: k + 1])
            raise StateError(
                f"Moving files into quarantine failed, and {k + 1} of them could not be put back.",
                document=str(root / QUARANTINE_DIR / MANIFEST_NAME),
                hint="Run dataset_dedupe action='undo' once the dataset folder can be written to again.",
            ) from exc


def _chosen(
    entries: list[QuarantineEntry], batch: str | None, files: Sequence[str] | None, root: Path
) -> tuple[str, list[QuarantineEntry]]:
    waiting = [e for e in entries if not e.restored]
    if not waiting:
        raise NotFoundError(
            "Nothing is in quarantine for this dataset.",
            kind="quarantine",
            name=str(root),
            hint="Files go to quarantine with dataset_dedupe action='quarantine'.",
        )
    if files:
        wanted = {_dataset_path(root, f)[0] for f in files}
        chosen = [e for e in waiting if e.original in wanted or e.caption_of in wanted]
        missing = wanted - {e.original for e in chosen}
        if missing:
            raise NotFoundError(
                f"Not in quarantine: {', '.join(sorted(missing))}.",
                kind="quarantine",
                name=sorted(missing)[0],
                hint="Give the paths the files had in the dataset, as the quarantine answer listed them.",
            )
        return ", ".join(sorted({e.batch for e in chosen})), chosen
    batch = batch or waiting[-1].batch
    chosen = [e for e in waiting if e.batch == batch]
    if not chosen:
        open_batches = sorted({e.batch for e in waiting})
        raise NotFoundError(
            f"No files of quarantine batch '{batch}' are waiting to be restored.",
            kind="quarantine",
            name=batch,
            hint=f"Open batches: {', '.join(open_batches)}.",
        )
    return batch, chosen


def undo_quarantine(
    root: Path,
    *,
    batch: str | None = None,
    files: Sequence[str] | None = None,
    wait_seconds: float = BUSY_WAIT_SECONDS,
) -> QuarantineResult:
    """Move files back where they were, checking their bytes: ``files`` (with their captions), else a batch.

    The batch defaults to the latest. Blocking: run it in a worker thread.

    Raises:
        NotFoundError: nothing is in quarantine, or not the batch or files asked for.
        BusyError: another conversation kept moving files of this dataset for longer than ``wait_seconds``.
    """
    with _one_at_a_time(root, wait_seconds):
        return _undo(root, batch, files)


def _undo(root: Path, batch: str | None, files: Sequence[str] | None) -> QuarantineResult:
    entries = _settle(root, read_manifest(root))
    label, chosen = _chosen(entries, batch, files, root)
    result = QuarantineResult(action="undo", batch=label)
    for entry in chosen:
        problem = _restore(root, entry)
        if problem is None:
            entry.restored = True
            result.moved.append(entry.original)
        else:
            result.skipped.append(f"{entry.original}: {problem}")
    result.manifest = str(_write_manifest(root, entries))
    for name in {e.batch for e in chosen}:
        _prune_empty(root / QUARANTINE_DIR / name)
    return result


def _restore(root: Path, entry: QuarantineEntry) -> str | None:
    """Put one file back; the reason it stays where it is, or None."""
    src, dst = root / entry.quarantined, root / entry.original
    if not src.exists():
        if dst.exists() and _sha256(dst) == entry.sha256:
            return None  # already back: an undo cut short by a kill moved it before the manifest was written
        return f"its quarantined copy is gone ({entry.quarantined})"
    if _sha256(src) != entry.sha256:
        return "the quarantined copy changed since it was moved; left in place"
    try:
        _move_no_clobber(src, dst)
    except FileExistsError:
        return "a file with that name exists again; left in quarantine"
    return None


def _prune_empty(folder: Path) -> None:
    # Only empty folders we created; never a file.
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()
