"""The grimoire store: versioned JSON documents under ``grimoire/.state/`` plus markdown views.

One writer at a time per document: an ``anyio.Lock`` inside the process and ``fcntl.flock`` across processes
(Claude Code and Claude Desktop may run two servers on one grimoire). Each update re-reads the document under
both locks, so no acknowledged update is ever lost.

A view (``eye.md``, ``studio.md``) is re-rendered after every write; ``state/views.py`` says how a view that
differs from our last render is taken in (hand edits applied over the current document, suspicious edits held
back, files we did not write imported with a dated copy kept). Reads never write: they show the document as the
view's edits would make it, and the next write (or the next start) commits that. What an edit did is said once:
in the next answer that reads or changes that document, and in the log.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict, ValidationError

from ategnatos_mcp.errors import AtegnatosError, InvalidRequestError, StateError
from ategnatos_mcp.state.atomic import remove_leftover_temp_files, write_text_atomic
from ategnatos_mcp.state.claims import Holder, Refusal, claim, claimed, holding
from ategnatos_mcp.state.views import (
    Merge,
    View,
    ViewOutcome,
    commit_files,
    examine_view,
    held_path,
    read_held,
    write_view,
)

__all__ = ["Document", "GrimoireStore", "Merge", "Migration", "Update", "View"]

logger = logging.getLogger("ategnatos_mcp.state")

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


@dataclass
class Update(Generic[D]):
    """What ``GrimoireStore.update`` yields: the document to change, and notices for the answer.

    Set ``relayed`` when ``notices`` go into the caller's answer; otherwise they wait for the next answer that
    reads or changes this document with its notices.
    """

    doc: D
    notices: list[str] = field(default_factory=list[str])
    discard: bool = False
    relayed: bool = False


class GrimoireStore:
    """Reads and writes state documents by name; renders their views."""

    def __init__(self, grimoire_dir: Path) -> None:
        self.root = grimoire_dir
        self.state_dir = grimoire_dir / ".state"
        self._locks: dict[str, anyio.Lock] = {}
        self._views: dict[str, View[Any]] = {}
        self._pending: dict[str, list[str]] = {}  # said at start-up, for the next answer about that document
        self._told: dict[str, str] = {}  # document -> the view version whose notices were already given

    def register_view(self, document: str, view: View[Any]) -> None:
        self._views[document] = view

    # Start-up -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start-up housekeeping: leftovers of killed writes removed, each view brought in line with its document.

        Never raises: a document that cannot be read is logged here and reported by the tools that use it.
        """
        if self.root.is_dir():
            removed = await anyio.to_thread.run_sync(self._remove_leftovers)
            for path in removed:
                logger.info("removed %s, left by a write that was killed", path)
        for name, view in list(self._views.items()):
            if view.model is None or not ((self.root / view.filename).exists() or self._path(name).exists()):
                continue
            try:
                async with self._transaction(name, view.model, startup=True):
                    pass
            except AtegnatosError as exc:
                logger.warning("%s was left as it is: %s", view.filename, exc.message)

    def _remove_leftovers(self) -> list[Path]:
        return remove_leftover_temp_files(self.root)

    # Reading ------------------------------------------------------------------------------------
    async def read(self, name: str, model: type[D]) -> D:
        """The current document (a fresh default if none was written yet), as its view's hand edits make it.

        Writes nothing and gives no notices (``read_with_notices`` does).
        """
        doc, _ = await anyio.to_thread.run_sync(self._read_now, name, model)
        return doc

    async def read_with_notices(self, name: str, model: type[D]) -> tuple[D, list[str]]:
        """Like ``read``, plus what the view's edits did, for an answer (each said once)."""
        doc, outcome = await anyio.to_thread.run_sync(self._read_now, name, model)
        notices = self._pending.pop(name, [])
        if outcome is not None and outcome.said and self._told.get(name) != outcome.sha:
            self._told[name] = outcome.sha
            notices += outcome.said
            if outcome.render and (outcome.held or outcome.aside or outcome.backup):
                notices.append("Nothing was written yet; the next change (or start) saves it and keeps your file.")
        return doc, notices

    def _read_now(self, name: str, model: type[D]) -> tuple[D, ViewOutcome[D] | None]:
        if name not in self._views:
            return self._load(name, model)[0], None
        load = functools.partial(self._load, name, model)
        outcome = examine_view(self._views[name], self.root, self.state_dir, name, load, datetime.now(UTC))
        return outcome.doc, outcome

    def _path(self, name: str) -> Path:
        return self.state_dir / f"{name}.json"

    def _load(self, name: str, model: type[D]) -> tuple[D, bool]:
        path = self._path(name)
        try:
            raw_text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return model(schema_version=model.SCHEMA_VERSION), False
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
        raw = self._migrate(name, raw, model, path)  # type: ignore[arg-type]
        try:
            return model.model_validate(raw), True
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

    # Claims -------------------------------------------------------------------------------------
    def claim(
        self, key: str, what: str, *, refuse: Refusal, wait_seconds: float = 0.0
    ) -> AbstractAsyncContextManager[None]:
        """Hold the claim ``key`` of this project for a block (one conversation at a time, across server
        processes; see ``state/claims.py``): ``async with store.claim(...):`` re-read, act, record, let go.

        Raises:
            AtegnatosError: ``refuse(holder)`` when another conversation holds it.
        """
        return claim(
            claimed(self.state_dir, key), what, now=datetime.now(UTC), refuse=refuse, wait_seconds=wait_seconds
        )

    def claim_holder(self, key: str) -> Holder | None:
        """Who holds the claim ``key`` right now (another conversation, or a call of this server), or None."""
        return holding(claimed(self.state_dir, key))

    # Writing ------------------------------------------------------------------------------------
    def _lock(self, name: str) -> anyio.Lock:
        if name not in self._locks:
            self._locks[name] = anyio.Lock()
        return self._locks[name]

    @asynccontextmanager
    async def update(self, name: str, model: type[D]) -> AsyncGenerator[Update[D]]:
        """Lock, read fresh, let the caller change ``doc``, then write atomically and render the view.

        Nothing is written if the block raises or sets ``discard``.
        """
        async with self._transaction(name, model) as upd:
            yield upd

    async def accept_held_edit(self, name: str, model: type[D]) -> tuple[D, list[str]]:
        """Apply the hand edit of a view that was held back for removing too much at once; returns the notices.

        Raises:
            InvalidRequestError: no edit is held back, or its kept copy is gone.
        """
        async with self._transaction(name, model, accept_held=True) as upd:
            upd.relayed = True
            accepted = upd.doc.model_copy(deep=True), list(upd.notices)
        return accepted

    @asynccontextmanager
    async def _transaction(
        self, name: str, model: type[D], *, startup: bool = False, accept_held: bool = False
    ) -> AsyncGenerator[Update[D]]:
        async with self._lock(name):
            self.state_dir.mkdir(parents=True, exist_ok=True)
            lock_fd = await anyio.to_thread.run_sync(self._acquire_file_lock, name, abandon_on_cancel=False)
            try:
                doc, outcome = await anyio.to_thread.run_sync(self._read_now, name, model)
                pending = self._pending.pop(name, [])
                fresh: list[str] = []
                if outcome is not None:
                    fresh = (outcome.said if self._told.get(name) != outcome.sha else []) + outcome.done
                upd = Update(doc=doc, notices=pending + fresh)
                committed = False
                try:
                    if accept_held:
                        await anyio.to_thread.run_sync(self._apply_held, name, upd)
                    if startup:
                        upd.discard = outcome is None or not (outcome.render or outcome.changed)
                    yield upd
                    if not upd.discard:
                        await anyio.to_thread.run_sync(self._commit, name, model, upd, outcome, startup, accept_held)
                        committed = True
                finally:
                    # Not in an answer: kept for the next one (what a commit did is not recomputed later).
                    unsaid = [] if committed and upd.relayed else pending + (fresh if committed else [])
                    if unsaid:
                        self._pending[name] = unsaid + self._pending.get(name, [])
            finally:
                os.close(lock_fd)  # closing releases the flock

    def _commit(
        self,
        name: str,
        model: type[D],
        upd: Update[D],
        outcome: ViewOutcome[D] | None,
        startup: bool,
        accept_held: bool,
    ) -> None:
        view = self._views.get(name)
        if view is not None and outcome is not None:
            commit_files(outcome, view, self.root, self.state_dir, name)
        if accept_held:
            held_path(self.state_dir, name).unlink(missing_ok=True)
        write_doc = not startup or (outcome is not None and outcome.changed)
        if write_doc:
            upd.doc.revision += 1
            upd.doc.schema_version = model.SCHEMA_VERSION
            write_text_atomic(self._path(name), upd.doc.model_dump_json(indent=2) + "\n")
        if view is not None:
            write_view(view, self.root, self.state_dir, name, upd.doc)
        if outcome is not None and (outcome.said or outcome.done):
            self._told[name] = outcome.sha
            for line in outcome.said + outcome.done:
                logger.warning("%s: %s", view.filename if view else name, line)

    def _apply_held(self, name: str, upd: Update[D]) -> None:
        view = self._views.get(name)
        held = read_held(self.state_dir, name)
        if view is None or view.merge is None or held is None:
            raise InvalidRequestError(
                "No hand edit is waiting to be applied.",
                hint="Only an edit that removed most entries at once is held back; nothing needs confirming now.",
            )
        copy = self.root / held.copy_name
        try:
            text = copy.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequestError(
                f"The held-back edit of {view.filename} was kept as {held.copy_name}, which can no longer be read.",
                hint=f"Edit {view.filename} again, or remove entries with the tool instead.",
            ) from exc
        merged = view.merge(text, held.base, upd.doc)
        upd.doc = merged.doc
        upd.notices.append(
            f"Applied your edit of {view.filename} kept as {held.copy_name}: "
            f"{len(merged.removed)} entries removed, {merged.changed} added or changed."
        )

    def _acquire_file_lock(self, name: str) -> int:
        fd = os.open(self.state_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
