"""An asset's history: every attempt as a version, revert, approval, and what ComfyUI made for it.

Each asset's log lives under ``grimoire/projects/{project}/assets/{asset}/`` (see ``iterations.py``);
comfyui_submit and comfyui_job put their jobs on it through ``record_generation`` / ``record_finished``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from ategnatos_mcp.art.families import FamilyCatalog
from ategnatos_mcp.art.generations import Generation, apply_generation
from ategnatos_mcp.art.handoff import handoff_note, suggest_submit
from ategnatos_mcp.art.iterations import (
    IterationLog,
    add_version,
    draft_from_iteration,
    get_version,
    lineage,
    record_outcome,
    revert_to,
    set_spec,
    summarise,
)
from ategnatos_mcp.art.library import PromptLibrary, entry_from_version
from ategnatos_mcp.art.models import (
    Adjustment,
    ArtAsset,
    AssetSpec,
    FeedbackMap,
    Iteration,
    IterationsAnswer,
    PromptDraft,
)
from ategnatos_mcp.art.prompt import build_prompt, parse_terms
from ategnatos_mcp.art.proposals import approval_evidence, approval_proposals
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.eye import EYE_DOCUMENT, EyeProfile
from ategnatos_mcp.state import GrimoireStore

__all__ = ["AssetBook", "Adjuster"]

Adjuster = Callable[[PromptDraft, str, "Adjustment | None"], Awaitable[PromptDraft]]


class AssetBook:
    """The art_iterations actions, plus the generation log comfyui_submit and comfyui_job feed."""

    def __init__(
        self,
        store: GrimoireStore,
        clock: Callable[[], datetime],
        catalog: FamilyCatalog,
        feedback_map: FeedbackMap,
        library: PromptLibrary,
        log: IterationLog,
        adjust: Adjuster,
    ) -> None:
        self.store = store
        self.clock = clock
        self.catalog = catalog
        self.feedback_map = feedback_map
        self.library = library
        self.log = log
        self._adjusted = adjust
        # Jobs submitted for a version and not finished yet: job id -> (project, asset, version).
        self.pending: dict[str, tuple[str, str, int | None]] = {}

    def _draft_of(self, it: Iteration) -> PromptDraft:
        return draft_from_iteration(it, self.catalog.get(it.family))

    # comfyui_submit / comfyui_job ---------------------------------------------------------------
    async def record_generation(
        self, project: str, asset: str, version: int | None, gen: Generation
    ) -> tuple[int | None, list[str]]:
        """Log a ComfyUI job on the asset (its seed, model, pictures); returns the version it went to.

        An unfinished job is remembered and completed by ``record_finished`` when its pictures arrive.
        """
        notices: list[str] = []
        async with self.log.update(project, asset, notices) as doc:
            it, more = apply_generation(doc, version, gen, catalog=self.catalog, now=self.clock())
        if it is not None and gen.state in ("queued", "running"):
            self.pending[gen.job_id] = (project, asset, it.version)
        return (it.version if it is not None else None), [*more, *notices]

    async def record_finished(self, gen: Generation) -> tuple[str, int | None, list[str]] | None:
        """Complete the log of a job submitted for a version; None when no version waits for it."""
        link = self.pending.get(gen.job_id)
        if link is None or gen.state in ("queued", "running"):
            return None
        del self.pending[gen.job_id]
        project, asset, version = link
        logged, notices = await self.record_generation(project, asset, version, gen)
        return f"{project}/{asset}", logged, notices

    async def version_output(self, project: str, asset: str, version: int | None) -> tuple[str, Iteration, AssetSpec]:
        """The picture of an asset's approved version (or of version ``version``), for export.

        Raises:
            NotFoundError: no such asset or version.
            InvalidRequestError: nothing approved and no version given, or the version has no picture yet.
        """
        doc = await self.log.read(project, asset)
        if version is None and doc.approved_version is None:
            raise InvalidRequestError(
                f"No version of {project}/{asset} is approved yet.",
                hint="Approve one with art_iterations (action 'approve'), or pass `version`.",
            )
        it = get_version(doc, version if version is not None else doc.approved_version)
        if not it.outputs:
            raise InvalidRequestError(
                f"Version {it.version} of {project}/{asset} has no picture recorded yet.",
                hint="Generate it with comfyui_submit (giving project and asset), or log the file with art_iterations.",
            )
        return it.outputs[0], it, doc.spec

    # art_iterations -----------------------------------------------------------------------------
    async def history(self, project: str, asset: str, version: int | None = None) -> IterationsAnswer:
        doc = await self.log.read(project, asset)
        answer = self._answer("history", doc)
        if version is not None:
            answer.detail = get_version(doc, version)
        return answer

    async def log_attempt(
        self,
        project: str,
        asset: str,
        *,
        version: int | None = None,
        seed: int | None = None,
        outputs: Sequence[str] = (),
        feedback: str | None = None,
        family: str | None = None,
        positive: str | None = None,
        negative: str = "",
    ) -> IterationsAnswer:
        """Record what came out of a version, or log a prompt used elsewhere as a new version."""
        notices: list[str] = []
        async with self.log.update(project, asset, notices) as doc:
            if positive is not None:
                if not family:
                    raise InvalidRequestError("Say which model family the prompt was for.", hint="Pass `family`.")
                chosen = self.catalog.get(family)
                draft = build_prompt(chosen, positive)
                draft.positive_terms = parse_terms(positive, chosen)
                draft.negative_terms = parse_terms(negative, chosen, negative=True)
                draft.positive, draft.negative = positive, negative
                version = add_version(doc, draft, now=self.clock(), origin="logged").version
            it = record_outcome(doc, version, seed=seed, outputs=list(outputs), feedback=feedback)
            answer = self._answer("log", doc)
            answer.detail = it
        answer.notices = notices
        return answer

    async def revert(
        self, project: str, asset: str, version: int, *, feedback: str = "", changes: Adjustment | None = None
    ) -> IterationsAnswer:
        """A new version that reproduces ``version`` exactly, then (optionally) adjusted by feedback."""
        notices: list[str] = []
        await self.log.read(project, asset)  # a misspelt asset is refused before its folder is made
        async with self.log.update(project, asset, notices) as doc:
            copy = revert_to(doc, version, now=self.clock())
            if feedback.strip() or changes is not None:
                draft = await self._adjusted(self._draft_of(copy), feedback, changes)
                doc.iterations.pop()
                new = add_version(
                    doc,
                    draft,
                    now=self.clock(),
                    origin="adjusted",
                    based_on=version,
                    intent=copy.intent,
                    template=copy.template,
                )
            else:
                draft = draft_from_iteration(copy, self.catalog.get(copy.family))
                new = copy
            answer = self._answer("revert", doc)
            answer.detail, answer.draft = new, draft
        family = self.catalog.get(new.family)
        if new.workflow:
            answer.submit_note = (
                f"Version {version} was made with the saved workflow '{new.workflow}': submit it again with "
                f"comfyui_submit workflow='{new.workflow}', project, asset and version {new.version}."
            )
        else:
            answer.comfyui_submit = suggest_submit(family, draft, project=project, asset=asset, version=new.version)
            answer.submit_note = handoff_note(family)
        answer.notices = notices
        return answer

    async def approve(
        self,
        project: str,
        asset: str,
        version: int | None,
        *,
        notes: str = "",
        save_as: str | None = None,
        tags: Sequence[str] = (),
    ) -> IterationsAnswer:
        """Mark a version approved, optionally file it in the library, and propose eye updates."""
        notices: list[str] = []
        await self.log.read(project, asset)  # a misspelt asset is refused before its folder is made
        async with self.log.update(project, asset, notices) as doc:
            it = get_version(doc, version)
            doc.approved_version, doc.approval_notes = it.version, notes
            answer = self._answer("approve", doc)
            answer.detail = it
            chain = lineage(doc, it)
        profile = await self.store.read(EYE_DOCUMENT, EyeProfile)
        answer.eye_suggestions = approval_proposals(
            profile,
            chain,
            it,
            rules=self.feedback_map.rules,
            family_name=self.catalog.get(it.family).name,
            today=self.clock().date(),
            evidence=approval_evidence(project, asset, it, notes),
        )
        if save_as:
            entry = entry_from_version(save_as, it, project, asset, tags, notes, saved_at=self.clock())
            try:
                answer.library_entry, more = await self.library.save(entry)
                notices.extend(more)
            except InvalidRequestError as exc:
                # The approval itself is recorded; only the library copy failed.
                notices.append(f"Approved, but not saved to the library: {exc.message} {exc.hint}".strip())
        answer.notices = notices
        return answer

    async def set_spec(self, project: str, asset: str, spec: AssetSpec) -> IterationsAnswer:
        notices: list[str] = []
        async with self.log.update(project, asset, notices) as doc:
            set_spec(doc, spec)
            answer = self._answer("spec", doc)
        answer.notices = notices
        return answer

    def _answer(self, action: str, doc: ArtAsset) -> IterationsAnswer:
        # Token-frugal: only 'history' lists every version.
        shown = doc.iterations if action == "history" else doc.iterations[-3:]
        return IterationsAnswer(
            action=action,
            project=doc.project,
            asset=doc.asset,
            folder=str(self.log.folder(doc.project, doc.asset)),
            spec=doc.spec,
            version_count=len(doc.iterations),
            versions=[summarise(it, doc.approved_version) for it in shown],
            approved_version=doc.approved_version,
        )
