"""The grimoire store: versioned JSON documents under ``grimoire/.state/`` plus markdown views.

One writer at a time per document: an ``anyio.Lock`` inside the process and ``fcntl.flock``
across processes (Claude Code and Claude Desktop may run two servers on one grimoire). Each
update re-reads the document under both locks, so no acknowledged update is ever lost.

A view (``eye.md``, ``studio.md``) is re-rendered after every write. The hash of the last render
is kept; a view whose bytes changed since was edited by hand: it is imported when its ``parse``
accepts it, otherwise the edited copy is kept beside the new render and a notice says so.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict, ValidationError

from ategnatos_mcp.errors import StateError
from ategnatos_mcp.state.atomic import write_text_atomic

__all__ = ["Document", "GrimoireStore", "Migration", "Update", "View"]

Migration = Callable[[dict[str, Any]], dict[str, Any]]


class Document(BaseModel):
    """Base of every state document. Subclasses set ``SCHEMA_VERSION`` and ``MIGRATIONS``.

    ``MIGRATIONS[v]`` upgrades a raw document from version ``v`` to ``v + 1``.
    """

    model_config = ConfigDict(extra="forbid")
    SCHEMA_VERSION: ClassVar[int] = 1
    MIGRATIONS: ClassVar[dict[int, Migration]] = {}

    schema_version: int = 1
    revision: int = 0


D = TypeVar("D", bound=Document)


@dataclass(frozen=True)
class View(Generic[D]):
    """A markdown rendering of one document, kept in sync by the store.

    ``parse(text, current)`` returns the document a hand-edited view describes, or raises
    ``ValueError`` with a plain reason when the text cannot be understood.
    """

    filename: str
    render: Callable[[D], str]
    parse: Callable[[str, D], D]


@dataclass
class Update(Generic[D]):
    """What ``GrimoireStore.update`` yields: the document to change, and notices for the answer."""

    doc: D
    notices: list[str] = field(default_factory=list)
    discard: bool = False


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class GrimoireStore:
    """Reads and writes state documents by name; renders their views."""

    def __init__(self, grimoire_dir: Path) -> None:
        self.root = grimoire_dir
        self.state_dir = grimoire_dir / ".state"
        self._locks: dict[str, anyio.Lock] = {}
        self._views: dict[str, View[Any]] = {}

    def register_view(self, document: str, view: View[Any]) -> None:
        self._views[document] = view

    # Reading ------------------------------------------------------------------------------------
    async def read(self, name: str, model: type[D]) -> D:
        """The current document (a fresh default if none was written yet); hand edits are imported."""
        if name in self._views and self._view_changed(name):
            async with self.update(name, model) as upd:
                return upd.doc.model_copy(deep=True)
        return await anyio.to_thread.run_sync(self._load, name, model)

    def _path(self, name: str) -> Path:
        return self.state_dir / f"{name}.json"

    def _load(self, name: str, model: type[D]) -> D:
        path = self._path(name)
        try:
            raw_text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return model(schema_version=model.SCHEMA_VERSION)
        try:
            raw = json.loads(raw_text)
            if not isinstance(raw, dict):
                raise ValueError("the top level is not an object")
        except ValueError as exc:
            raise StateError(
                f"The grimoire file {path} is damaged and cannot be read ({exc}). Nothing was changed.",
                document=name,
                hint=f"Restore {path.name} from a backup, or move it away to start that document fresh.",
            ) from exc
        raw = self._migrate(name, raw, model, path)
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise StateError(
                f"The grimoire file {path} has an invalid entry at `{where}`: {first['msg']}. Nothing was changed.",
                document=name,
                hint=f"Fix that entry in {path.name} by hand, or restore it from a backup.",
            ) from exc

    def _migrate(self, name: str, raw: dict[str, Any], model: type[D], path: Path) -> dict[str, Any]:
        version = raw.get("schema_version", 1)
        if not isinstance(version, int) or version > model.SCHEMA_VERSION:
            raise StateError(
                f"{path} was written by a newer Ategnatos (schema {version}, this one knows {model.SCHEMA_VERSION}).",
                document=name,
                hint="Upgrade ategnatos-mcp; nothing was changed.",
            )
        while version < model.SCHEMA_VERSION:
            step = model.MIGRATIONS.get(version)
            if step is None:
                raise StateError(f"No migration from schema {version} for {path}.", document=name)
            raw = step(dict(raw))
            version += 1
            raw["schema_version"] = version
        return raw

    # Writing ------------------------------------------------------------------------------------
    def _lock(self, name: str) -> anyio.Lock:
        if name not in self._locks:
            self._locks[name] = anyio.Lock()
        return self._locks[name]

    @asynccontextmanager
    async def update(self, name: str, model: type[D]) -> AsyncIterator[Update[D]]:
        """Lock, read fresh, let the caller change ``doc``, then write atomically and render the view.

        Nothing is written if the block raises or sets ``discard``.
        """
        async with self._lock(name):
            self.state_dir.mkdir(parents=True, exist_ok=True)
            lock_fd = await anyio.to_thread.run_sync(self._acquire_file_lock, name, abandon_on_cancel=False)
            try:
                doc = await anyio.to_thread.run_sync(self._load, name, model)
                upd = Update(doc=doc)
                if name in self._views:
                    upd.doc = await anyio.to_thread.run_sync(self._import_view, name, doc, upd.notices)
                yield upd
                if not upd.discard:
                    upd.doc.revision += 1
                    upd.doc.schema_version = model.SCHEMA_VERSION
                    await anyio.to_thread.run_sync(self._write, name, upd.doc)
            finally:
                os.close(lock_fd)  # closing releases the flock

    def _acquire_file_lock(self, name: str) -> int:
        fd = os.open(self.state_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def _write(self, name: str, doc: Document) -> None:
        write_text_atomic(self._path(name), doc.model_dump_json(indent=2) + "\n")
        view = self._views.get(name)
        if view is not None:
            rendered = view.render(doc)
            write_text_atomic(self.root / view.filename, rendered)
            write_text_atomic(self._hash_path(name), _sha256(rendered) + "\n")

    # Views --------------------------------------------------------------------------------------
    def _hash_path(self, name: str) -> Path:
        return self.state_dir / f"{name}.view.sha256"

    def _view_changed(self, name: str) -> bool:
        view = self._views[name]
        try:
            text = (self.root / view.filename).read_text(encoding="utf-8")
            recorded = self._hash_path(name).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return False
        return _sha256(text) != recorded

    def _import_view(self, name: str, doc: D, notices: list[str]) -> D:
        if not self._view_changed(name):
            return doc
        view: View[D] = self._views[name]
        view_path = self.root / view.filename
        text = view_path.read_text(encoding="utf-8")
        try:
            imported = view.parse(text, doc)
        except ValueError as exc:
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            kept = view_path.with_name(f"{view_path.stem}.edited-{stamp}{view_path.suffix}")
            write_text_atomic(kept, text)
            # Re-render now so the view matches the document again and the notice is given once.
            self._write(name, doc)
            notices.append(
                f"Your hand edit of {view.filename} could not be read ({exc}); it is kept as {kept.name} "
                f"and {view.filename} was rendered fresh. Copy your changes over in the documented format."
            )
            return doc
        notices.append(f"Imported your hand edits of {view.filename}.")
        return imported
