"""The prompt library: proven prompts saved per family, searchable by words and tags.

``grimoire/.state/art-library.json`` is the source of truth; each entry is rendered to
``grimoire/library/{family}/{name}.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import anyio.to_thread

from ategnatos_mcp.art.models import Iteration, LibraryDocument, LibraryEntry, LibraryMatch
from ategnatos_mcp.art.phrases import words
from ategnatos_mcp.art.render import edited_notice, render_library_entry
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.paths import safe_name
from ategnatos_mcp.state import GrimoireStore, write_rendered

__all__ = ["LIBRARY_DOCUMENT", "PromptLibrary", "entry_from_version", "score_entry"]

LIBRARY_DOCUMENT = "art-library"


def score_entry(entry: LibraryEntry, query_words: set[str], tags: set[str]) -> float:
    """How well an entry matches: shared words (name and tags count double), every asked tag required."""
    entry_tags = {t.casefold() for t in entry.tags}
    if tags and not tags <= entry_tags:
        return 0.0
    if not query_words:
        return 1.0 if tags else 0.0
    strong = words(entry.name) | words(" ".join(entry.tags))
    weak = words(entry.positive) | words(entry.notes)
    hits = 2 * len(query_words & strong) + len(query_words & (weak - strong))
    return round(hits / (2 * len(query_words)), 3)


class PromptLibrary:
    """Saves, finds and reads library entries."""

    def __init__(self, store: GrimoireStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.root = store.root / "library"
        self.clock = clock

    def path_of(self, entry: LibraryEntry) -> Path:
        return self.root / entry.family / f"{entry.name}.md"

    async def save(self, entry: LibraryEntry, *, overwrite: bool = False) -> tuple[LibraryEntry, list[str]]:
        """Store ``entry`` and render its markdown; returns it with notices about hand edits kept aside.

        Raises:
            InvalidRequestError: an entry with that name exists for the family and ``overwrite`` is False.
        """
        entry.name = safe_name(entry.name, what="library name")
        notices: list[str] = []
        async with self.store.update(LIBRARY_DOCUMENT, LibraryDocument) as upd:
            existing = upd.doc.find(entry.family, entry.name)
            if existing is not None and not overwrite:
                raise InvalidRequestError(
                    f"The library already has '{entry.name}' for {entry.family}.",
                    hint="Pick another name, or pass overwrite=true to replace it.",
                )
            if existing is not None:
                entry.view_hash = existing.view_hash
                upd.doc.entries.remove(existing)
            path = self.path_of(entry)
            written = await anyio.to_thread.run_sync(
                write_rendered, path, render_library_entry(entry), entry.view_hash or None, self.clock()
            )
            entry.view_hash = written.hash
            if written.kept is not None:
                notices.append(edited_notice(path, written.kept, hand_kept=written.hand_kept))
            upd.doc.entries.append(entry)
        return entry, notices

    async def get(self, family: str, name: str) -> LibraryEntry:
        """One entry.

        Raises:
            NotFoundError: no entry of that name for the family.
        """
        doc = await self.store.read(LIBRARY_DOCUMENT, LibraryDocument)
        entry = doc.find(family, name)
        if entry is None:
            names = ", ".join(e.name for e in doc.entries if e.family == family) or "none yet"
            raise NotFoundError(
                f"No library prompt called '{name}' for {family}.",
                kind="library entry",
                name=name,
                hint=f"Saved prompts for {family}: {names}. Search with art_library action 'search'.",
            )
        return entry

    async def search(
        self, text: str = "", *, tags: Sequence[str] = (), family: str | None = None, limit: int = 10
    ) -> list[LibraryMatch]:
        """Entries ranked by shared words and tags, best first."""
        doc = await self.store.read(LIBRARY_DOCUMENT, LibraryDocument)
        query_words, wanted = words(text), {t.casefold().strip() for t in tags if t.strip()}
        scored = [
            (score_entry(entry, query_words, wanted), entry)
            for entry in doc.entries
            if family is None or entry.family == family
        ]
        ranked = sorted((pair for pair in scored if pair[0] > 0), key=lambda p: (-p[0], p[1].name))
        return [
            LibraryMatch(family=e.family, name=e.name, positive=e.positive, tags=e.tags, score=score)
            for score, e in ranked[:limit]
        ]


def entry_from_version(
    name: str, it: Iteration, project: str, asset: str, tags: Sequence[str], notes: str, *, saved_at: datetime
) -> LibraryEntry:
    """A library entry copied from a logged version, naming where it came from."""
    return LibraryEntry(
        name=name,
        family=it.family,
        positive=it.positive,
        negative=it.negative,
        settings=it.settings,
        loras=it.loras,
        tags=list(tags),
        notes=notes,
        source=f"{project}/{asset}/v{it.version}",
        saved_at=saved_at,
    )
