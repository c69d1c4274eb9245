"""The art director: one entry point per tool action, joining the model database, the eye, the studio,
the iteration log and the library. Generation itself belongs to ComfyUI; every answer also works for
manual use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import anyio.to_thread

from ategnatos_mcp.art.families import FamilyCatalog, load_family_database, load_feedback_map
from ategnatos_mcp.art.feedback import apply_adjustments, match_feedback
from ategnatos_mcp.art.handoff import suggest_submit
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
from ategnatos_mcp.art.library import PromptLibrary
from ategnatos_mcp.art.models import (
    Adjustment,
    ArtAsset,
    AssetSpec,
    FamilyDatabase,
    FeedbackMap,
    Iteration,
    IterationsAnswer,
    LibraryAnswer,
    LibraryEntry,
    PromptAnswer,
    PromptDraft,
)
from ategnatos_mcp.art.prompt import build_prompt, parse_terms, rerender
from ategnatos_mcp.art.proposals import approval_evidence, approval_proposals
from ategnatos_mcp.art.taste import choose_family, read_inventory, read_taste, resolve_loras
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.eye import EYE_DOCUMENT, EyeProfile
from ategnatos_mcp.state import GrimoireStore

__all__ = ["ArtDirector"]

_MANUAL = (
    "Generate it with comfyui_submit when ComfyUI is running, or copy the prompt and settings into any UI; "
    "then log the seed, outputs and the artist's reaction with art_iterations (action 'log')."
)


class ArtDirector:
    """Builds, adjusts, logs and files prompts."""

    def __init__(
        self,
        store: GrimoireStore,
        clock: Callable[[], datetime],
        catalog: FamilyCatalog,
        feedback_map: FeedbackMap,
    ) -> None:
        self.store = store
        self.clock = clock
        self.catalog = catalog
        self.feedback_map = feedback_map
        self.log = IterationLog(store.root, clock)
        self.library = PromptLibrary(store, clock)

    @classmethod
    async def open(cls, store: GrimoireStore, clock: Callable[[], datetime]) -> ArtDirector:
        """Load the bundled model database and feedback map (validated) and build the director."""
        database = await anyio.to_thread.run_sync(load_family_database)
        feedback_map = await anyio.to_thread.run_sync(load_feedback_map)
        return cls(store, clock, FamilyCatalog(database), feedback_map)

    def catalog_json(self) -> str:
        """The model database as JSON."""
        return FamilyDatabase(families=self.catalog.families).model_dump_json(indent=2)

    # art_prompt ---------------------------------------------------------------------------------
    async def build(
        self,
        intent: str,
        *,
        family: str | None = None,
        checkpoint: str | None = None,
        aspect: str | None = None,
        style_terms: Sequence[str] = (),
        negative_terms: Sequence[str] = (),
        loras: Sequence[str] = (),
        subject: str | None = None,
        seed: int | None = None,
        project: str | None = None,
        asset: str | None = None,
        safe_for_work: bool = True,
    ) -> tuple[PromptAnswer, list[str]]:
        """A new prompt for ``intent``; logged as the next version when project and asset are given."""
        if not intent.strip():
            raise InvalidRequestError("The request is empty.", hint="Describe what the image should show.")
        _check_pair(project, asset)
        inventory = await read_inventory(self.store)
        earlier = await self.log.read(project, asset, must_exist=False) if project and asset else None
        inherited = earlier is not None and bool(earlier.iterations) and not (family or checkpoint)
        if inherited and earlier is not None:
            family = earlier.iterations[-1].family
        chosen, how = choose_family(self.catalog, inventory, family, checkpoint)
        if inherited:
            how = f"Same model family as the asset's earlier versions ({chosen.name})."
        taste = await read_taste(self.store, chosen, subject=subject, request=intent)
        lora_choices, lora_warnings, fits = resolve_loras(inventory, loras, chosen, self.catalog)
        similar = await self.library.search(intent, family=chosen.id, limit=3)
        if aspect is None and earlier is not None and earlier.spec.width and earlier.spec.height:
            aspect = f"{earlier.spec.width}x{earlier.spec.height}"
        draft = build_prompt(
            chosen,
            intent,
            style_terms=style_terms,
            negative_terms=negative_terms,
            aspect=aspect,
            seed=seed,
            taste=taste,
            loras=lora_choices,
            similar=similar,
            safe_for_work=safe_for_work,
        )
        draft.warnings.extend(lora_warnings)
        draft.available_loras = [name for name in fits if name not in {u.name for u, _, _ in lora_choices}]
        answer = PromptAnswer(
            draft=draft,
            comfyui_submit=suggest_submit(chosen, draft, checkpoint),
            family_choice=how,
            project=project,
            asset=asset,
            next_step=_MANUAL,
        )
        notices: list[str] = []
        if project and asset:
            async with self.log.update(project, asset, notices) as doc:
                answer.version = add_version(doc, draft, now=self.clock(), origin="built", intent=intent).version
        return answer, notices

    async def adjust(
        self,
        *,
        feedback: str = "",
        changes: Adjustment | None = None,
        project: str | None = None,
        asset: str | None = None,
        from_version: int | None = None,
        family: str | None = None,
        positive: str | None = None,
        negative: str = "",
    ) -> tuple[PromptAnswer, list[str]]:
        """Apply feedback to a logged version (logged as a new one) or to a prompt given as text."""
        if not feedback.strip() and changes is None:
            raise InvalidRequestError(
                "There is no feedback to apply.", hint="Pass the artist's words as `feedback`, or explicit `changes`."
            )
        _check_pair(project, asset)
        notices: list[str] = []
        if project and asset:
            async with self.log.update(project, asset, notices) as doc:
                source = get_version(doc, from_version)
                draft = await self._adjusted(self._draft_of(source), feedback, changes)
                if feedback and not source.feedback:
                    source.feedback = feedback
                new = add_version(
                    doc, draft, now=self.clock(), origin="adjusted", based_on=source.version, intent=source.intent
                )
            answer = PromptAnswer(
                draft=draft, project=project, asset=asset, version=new.version, based_on=source.version
            )
        else:
            if not family or positive is None:
                raise InvalidRequestError(
                    "To adjust without a project, give the prompt and its model family.",
                    hint="Pass `positive` (and `negative`) plus `family`, or pass `project` and `asset`.",
                )
            chosen = self.catalog.get(family)
            base = PromptDraft(
                family=chosen.id,
                family_name=chosen.name,
                positive=positive,
                negative=negative,
                positive_terms=parse_terms(positive, chosen),
                negative_terms=parse_terms(negative, chosen, negative=True),
                settings=build_prompt(chosen, positive).settings,
            )
            draft = await self._adjusted(rerender(base, chosen), feedback, changes)
            answer = PromptAnswer(draft=draft)
        answer.comfyui_submit = suggest_submit(self.catalog.get(answer.draft.family), answer.draft)
        answer.next_step = _MANUAL
        return answer, notices

    def _draft_of(self, it: Iteration) -> PromptDraft:
        return draft_from_iteration(it, self.catalog.get(it.family))

    async def _adjusted(self, base: PromptDraft, feedback: str, changes: Adjustment | None) -> PromptDraft:
        family = self.catalog.get(base.family)
        matches, unrecognised = match_feedback(feedback, self.feedback_map)
        taste = await read_taste(self.store, family, subject=None, request=feedback)
        return apply_adjustments(
            base,
            family,
            matches,
            explicit=changes,
            never=taste.never,
            avoid=[t for t in taste.negative if t not in taste.never],
            unrecognised=unrecognised,
        )

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
                new = add_version(doc, draft, now=self.clock(), origin="adjusted", based_on=version, intent=copy.intent)
            else:
                family = self.catalog.get(copy.family)
                draft = draft_from_iteration(copy, family)
                new = copy
            answer = self._answer("revert", doc)
            answer.detail, answer.draft = new, draft
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
            entry = self._library_entry(save_as, it, project, asset, tags, notes)
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

    # art_library --------------------------------------------------------------------------------
    async def library_save(self, entry: LibraryEntry, *, overwrite: bool = False) -> LibraryAnswer:
        entry.family = self.catalog.get(entry.family).id
        saved, notices = await self.library.save(entry, overwrite=overwrite)
        return LibraryAnswer(action="save", entry=saved, path=str(self.library.path_of(saved)), notices=notices)

    async def library_save_version(
        self,
        project: str,
        asset: str,
        version: int | None,
        *,
        name: str,
        tags: Sequence[str] = (),
        notes: str = "",
        overwrite: bool = False,
    ) -> LibraryAnswer:
        """File a logged version (the approved one when no version is given, else the latest)."""
        doc = await self.log.read(project, asset)
        it = get_version(doc, version if version is not None else doc.approved_version)
        entry = self._library_entry(name, it, project, asset, tags, notes)
        return await self.library_save(entry, overwrite=overwrite)

    def _library_entry(
        self, name: str, it: Iteration, project: str, asset: str, tags: Sequence[str], notes: str
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
            saved_at=self.clock(),
        )

    async def library_get(self, family: str, name: str) -> LibraryAnswer:
        entry = await self.library.get(self.catalog.get(family).id, name)
        return LibraryAnswer(action="get", entry=entry, path=str(self.library.path_of(entry)))

    async def library_search(self, text: str, tags: Sequence[str], family: str | None) -> LibraryAnswer:
        family_id = self.catalog.get(family).id if family else None
        return LibraryAnswer(action="search", matches=await self.library.search(text, tags=tags, family=family_id))


def _check_pair(project: str | None, asset: str | None) -> None:
    if bool(project) != bool(asset):
        raise InvalidRequestError(
            "Give both a project and an asset to log this prompt, or neither.",
            hint="For example project 'launch page', asset 'mascot'.",
        )
