"""Iteration history per project and asset: every attempt, revert to version N, approval.

Each asset lives in ``grimoire/projects/{project}/assets/{asset}/``: ``.state/asset.json`` is the source
of truth (versioned, locked, atomic through ``GrimoireStore``), ``spec.md``, ``iterations.md`` and
``approved.md`` are rendered from it after every change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import anyio.to_thread

from ategnatos_mcp.art.models import ArtAsset, AssetSpec, Family, Iteration, IterationSummary, PromptDraft
from ategnatos_mcp.art.render import edited_notice, render_approved, render_iterations, render_spec
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.paths import safe_name
from ategnatos_mcp.state import GrimoireStore, write_rendered

__all__ = [
    "ASSET_DOCUMENT",
    "IterationLog",
    "add_version",
    "draft_from_iteration",
    "get_version",
    "lineage",
    "record_generation",
    "record_outcome",
    "revert_to",
    "set_spec",
    "summarise",
]

ASSET_DOCUMENT = "asset"
_VIEWS: dict[str, Callable[[ArtAsset], str]] = {
    "spec.md": render_spec,
    "iterations.md": render_iterations,
    "approved.md": render_approved,
}


class IterationLog:
    """Opens the per-asset documents under ``grimoire/projects`` and keeps their views in sync."""

    def __init__(self, grimoire_dir: Path, clock: Callable[[], datetime]) -> None:
        self.projects_dir = grimoire_dir / "projects"
        self.clock = clock
        self._stores: dict[Path, GrimoireStore] = {}

    def folder(self, project: str, asset: str) -> Path:
        """The asset's folder; the names are checked so they cannot leave ``projects/``."""
        return (
            self.projects_dir / safe_name(project, what="project name") / "assets" / safe_name(asset, what="asset name")
        )

    def _store(self, folder: Path) -> GrimoireStore:
        # One store per folder, so its in-process lock serialises writers of the same asset.
        if folder not in self._stores:
            self._stores[folder] = GrimoireStore(folder)
        return self._stores[folder]

    async def read(self, project: str, asset: str, *, must_exist: bool = True) -> ArtAsset:
        """The asset's log.

        Raises:
            NotFoundError: ``must_exist`` and nothing was logged for that asset yet.
        """
        folder = self.folder(project, asset)
        doc = await self._store(folder).read(ASSET_DOCUMENT, ArtAsset)
        if must_exist and doc.revision == 0:
            raise NotFoundError(
                f"There is no history for asset '{asset}' in project '{project}' yet.",
                kind="asset",
                name=f"{project}/{asset}",
                hint="Build a prompt with art_prompt (giving project and asset) or log one with art_iterations.",
            )
        return doc

    @asynccontextmanager
    async def update(self, project: str, asset: str, notices: list[str]) -> AsyncIterator[ArtAsset]:
        """Change the asset's log; on success the JSON and the three markdown views are written."""
        folder = self.folder(project, asset)
        async with self._store(folder).update(ASSET_DOCUMENT, ArtAsset) as upd:
            doc = upd.doc
            doc.project, doc.asset = doc.project or project, doc.asset or asset
            yield doc
            await anyio.to_thread.run_sync(self._write_views, folder, doc, notices)

    def _write_views(self, folder: Path, doc: ArtAsset, notices: list[str]) -> None:
        now = self.clock()
        for name, render in _VIEWS.items():
            written = write_rendered(folder / name, render(doc), doc.view_hashes.get(name), now)
            doc.view_hashes[name] = written.hash
            if written.kept is not None:
                notices.append(edited_notice(folder / name, written.kept, hand_kept=written.hand_kept))


def get_version(doc: ArtAsset, version: int | None) -> Iteration:
    """Version ``version`` (the latest when None).

    Raises:
        NotFoundError: no such version.
    """
    if not doc.iterations:
        raise NotFoundError(
            f"Asset '{doc.asset}' has no versions yet.", kind="version", hint="Build a prompt first with art_prompt."
        )
    found = doc.iterations[-1] if version is None else doc.version(version)
    if found is None:
        known = ", ".join(str(it.version) for it in doc.iterations)
        raise NotFoundError(
            f"Asset '{doc.asset}' has no version {version}.",
            kind="version",
            name=str(version),
            hint=f"Known versions: {known}. Call art_iterations with action 'history' to see them.",
        )
    return found


def add_version(
    doc: ArtAsset,
    draft: PromptDraft,
    *,
    now: datetime,
    origin: str,
    based_on: int | None = None,
    intent: str = "",
    template: str | None = None,
) -> Iteration:
    """Append ``draft`` as the next version (with the template that generates it, when one does)."""
    iteration = Iteration(
        version=(doc.iterations[-1].version + 1) if doc.iterations else 1,
        created_at=now,
        family=draft.family,
        positive=draft.positive,
        negative=draft.negative,
        positive_terms=[t.model_copy() for t in draft.positive_terms],
        negative_terms=[t.model_copy() for t in draft.negative_terms],
        settings=draft.settings.model_copy(),
        loras=[lora.model_copy() for lora in draft.loras],
        checkpoint=draft.checkpoint,
        template=template,
        based_on=based_on,
        origin=origin,  # type: ignore[arg-type]
        intent=intent,
        applied_feedback=list(draft.applied_feedback),
        eye_entries=list(draft.eye_entries),
    )
    doc.iterations.append(iteration)
    return iteration


def revert_to(doc: ArtAsset, version: int, *, now: datetime) -> Iteration:
    """A new version identical to ``version``: same prompt, negative, settings, seed and LoRAs."""
    source = get_version(doc, version)
    copy = source.model_copy(deep=True)
    copy.version = doc.iterations[-1].version + 1
    copy.created_at = now
    copy.based_on = source.version
    copy.origin = "reverted"
    copy.applied_feedback = []
    copy.outputs = []
    copy.job_ids = []
    copy.feedback = ""
    doc.iterations.append(copy)
    return copy


def record_outcome(
    doc: ArtAsset,
    version: int | None,
    *,
    seed: int | None = None,
    outputs: list[str] | None = None,
    feedback: str | None = None,
) -> Iteration:
    """Attach what came out of a version (seed, output files) and what the artist said about it."""
    it = get_version(doc, version)
    if seed is not None:
        it.settings.seed = seed
    if outputs:
        it.outputs.extend(path for path in outputs if path not in it.outputs)
    if feedback:
        it.feedback = f"{it.feedback} / {feedback}" if it.feedback else feedback
    return it


def record_generation(
    it: Iteration,
    *,
    job_id: str,
    seed: int | None,
    outputs: list[str],
    template: str | None,
    workflow: str | None,
    checkpoint: str | None,
) -> bool:
    """Attach a ComfyUI job to a version: its seed, model, template or workflow, and pictures. True if changed."""
    before = it.model_dump()
    if seed is not None:
        it.settings.seed = seed
    it.outputs.extend(path for path in outputs if path not in it.outputs)
    if job_id not in it.job_ids:
        it.job_ids.append(job_id)
    if workflow:
        it.workflow, it.template = workflow, None
    elif template:
        it.template, it.workflow = template, None
    if checkpoint:
        it.checkpoint = checkpoint
    return it.model_dump() != before


def set_spec(doc: ArtAsset, spec: AssetSpec) -> None:
    if (spec.width is None) != (spec.height is None):
        raise InvalidRequestError("Give both width and height for the final size, or neither.")
    doc.spec = spec


def draft_from_iteration(it: Iteration, family: Family) -> PromptDraft:
    """The prompt of a logged version, ready to adjust."""
    return PromptDraft(
        family=it.family,
        family_name=family.name,
        positive=it.positive,
        negative=it.negative,
        positive_terms=[t.model_copy() for t in it.positive_terms],
        negative_terms=[t.model_copy() for t in it.negative_terms],
        settings=it.settings.model_copy(),
        loras=[lora.model_copy() for lora in it.loras],
        checkpoint=it.checkpoint,
        eye_entries=list(it.eye_entries),
    )


def lineage(doc: ArtAsset, it: Iteration) -> list[Iteration]:
    """The version and its ancestors, following ``based_on``."""
    chain, seen, current = [], set(), it
    while current is not None and current.version not in seen:
        chain.append(current)
        seen.add(current.version)
        current = doc.version(current.based_on) if current.based_on is not None else None
    return chain


def summarise(it: Iteration, approved: int | None) -> IterationSummary:
    """A short line's worth of one version (the prompt cut at 160 characters)."""
    return IterationSummary(
        version=it.version,
        origin=it.origin,
        based_on=it.based_on,
        created_at=it.created_at,
        family=it.family,
        positive=it.positive if len(it.positive) <= 160 else it.positive[:157] + "...",
        seed=it.settings.seed,
        outputs=len(it.outputs),
        feedback=it.feedback,
        approved=it.version == approved,
    )
