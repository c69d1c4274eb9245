"""Move doubtful files into ``<dataset>/quarantine/<batch>/`` with a manifest; undo puts the exact bytes back.

Nothing is ever deleted. A file is moved with a rename inside the dataset's own disk, its caption
travels with it, and its sha256 is recorded so undo can prove it restores the same bytes. Undo never
overwrites a file that has appeared at the original place since.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ategnatos_mcp.dataset.captions import caption_files_by_stem
from ategnatos_mcp.dataset.models import QuarantineEntry, QuarantineResult
from ategnatos_mcp.dataset.scan import QUARANTINE_DIR, scan_dataset
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError, StateError
from ategnatos_mcp.state import write_text_atomic

__all__ = ["MANIFEST_NAME", "quarantine_files", "read_manifest", "undo_quarantine"]

MANIFEST_NAME = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(root: Path) -> list[QuarantineEntry]:
    """Every quarantine move recorded for this dataset (oldest first)."""
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
    payload["entries"] = [e.model_dump(mode="json") for e in entries]
    write_text_atomic(path, json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    return path


def _move_no_clobber(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        raise FileExistsError(str(dst))
    os.rename(src, dst)


def _inside(root: Path, rel: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or QUARANTINE_DIR in Path(rel).parts[:1]:
        raise InvalidRequestError(f"'{rel}' is not a file of this dataset.", hint="Use paths the audit listed.")
    return path


def quarantine_files(root: Path, files: dict[str, str], *, when: datetime) -> QuarantineResult:
    """Move ``files`` (dataset-relative path -> reason) and their captions into a new quarantine batch.

    Blocking: run it in a worker thread.
    """
    batch = when.strftime("%Y%m%dT%H%M%S")
    entries = read_manifest(root)
    while any(e.batch == batch for e in entries):
        batch += "b"
    captions = caption_files_by_stem(scan_dataset(root))
    result = QuarantineResult(action="quarantine", batch=batch)
    for rel, reason in sorted(files.items()):
        src = _inside(root, rel)
        if not src.is_file():
            result.skipped.append(f"{rel}: not found")
            continue
        moving = [(rel, reason)]
        stem = rel.rsplit(".", 1)[0]
        if stem in captions:
            moving.append((captions[stem].rel, f"caption of {rel}"))
        for item_rel, item_reason in moving:
            item = root / item_rel
            target_rel = f"{QUARANTINE_DIR}/{batch}/{item_rel}"
            entry = QuarantineEntry(
                original=item_rel, quarantined=target_rel, sha256=_sha256(item), reason=item_reason, batch=batch
            )
            try:
                _move_no_clobber(item, root / target_rel)
            except OSError as exc:
                result.skipped.append(f"{item_rel}: could not be moved ({exc.strerror or exc})")
                continue
            entries.append(entry)
            result.moved.append(entry)
    if result.moved:
        result.manifest = str(_write_manifest(root, entries))
    return result


def undo_quarantine(root: Path, *, batch: str | None = None) -> QuarantineResult:
    """Move a batch (default: the latest) back to where its files were, checking their bytes.

    Raises:
        NotFoundError: there is nothing in quarantine (or no such batch).
    """
    entries = read_manifest(root)
    open_batches = [e.batch for e in entries if not e.restored]
    if not open_batches:
        raise NotFoundError(
            "Nothing is in quarantine for this dataset.",
            kind="quarantine",
            name=str(root),
            hint="Quarantine happens with dataset_dedupe action='quarantine'.",
        )
    batch = batch or open_batches[-1]
    chosen = [e for e in entries if e.batch == batch and not e.restored]
    if not chosen:
        raise NotFoundError(
            f"No files of quarantine batch '{batch}' are waiting to be restored.",
            kind="quarantine",
            name=batch,
            hint=f"Open batches: {', '.join(sorted(set(open_batches)))}.",
        )
    result = QuarantineResult(action="undo", batch=batch)
    for entry in chosen:
        src, dst = root / entry.quarantined, root / entry.original
        if not src.is_file():
            result.skipped.append(f"{entry.original}: its quarantined copy is gone ({entry.quarantined})")
            continue
        if _sha256(src) != entry.sha256:
            result.skipped.append(f"{entry.original}: the quarantined copy changed since it was moved; left in place")
            continue
        try:
            _move_no_clobber(src, dst)
        except FileExistsError:
            result.skipped.append(f"{entry.original}: a file with that name exists again; left in quarantine")
            continue
        entry.restored = True
        result.moved.append(entry)
    result.manifest = str(_write_manifest(root, entries))
    _prune_empty(root / QUARANTINE_DIR / batch)
    return result


def _prune_empty(folder: Path) -> None:
    # Only empty folders we created; never a file.
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()
