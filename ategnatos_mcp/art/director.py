"""The art director: one entry point per tool action, joining the model database, the eye, the studio,
the iteration log and the library. Generation itself belongs to ComfyUI; every answer also works for
manual use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime

import anyio.to_thread

from ategnatos_mcp.art.assets import AssetBook
from ategnatos_mcp.art.families import FamilyCatalog, load_family_database, load_feedback_map
from ategnatos_mcp.art.feedback import apply_adjustments, match_feedback
from ategnatos_mcp.art.handoff import handoff_for, handoff_note, suggest_submit
from ategnatos_mcp.art.iterations import (
    IterationLog,
    add_version,
    draft_from_iteration,
    get_version,
)
from ategnatos_mcp.art.library import PromptLibrary, entry_from_version
from ategnatos_mcp.art.models import (
    Adjustment,
    Family,
    FeedbackMap,
    Iteration,
    LibraryAnswer,
    LibraryEntry,
    PromptAnswer,
    PromptDraft,
)
from ategnatos_mcp.art.prompt import build_prompt, parse_terms, rerender
from ategnatos_mcp.art.taste import choose_family, pick_checkpoint, read_inventory, read_taste, resolve_loras
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio import LearnedModel, ModelSource, StudioInventory, learn_models

__all__ = ["ArtDirector"]

_MANUAL = (
    "Generate it: pass `comfyui_submit` as it is to comfyui_submit (with a project and asset it logs the seed and "
    "pictures itself), or copy the prompt and settings into any UI and log them with art_iterations (action 'log')."
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
        self.assets = AssetBook(store, clock, catalog, feedback_map, self.library, self.log, self._adjusted)

    @classmethod
    async def open(cls, store: GrimoireStore, clock: Callable[[], datetime]) -> ArtDirector:
        """Load the bundled model database and feedback map (validated) and build the director."""
        database = await anyio.to_thread.run_sync(load_family_database)
        feedback_map = await anyio.to_thread.run_sync(load_feedback_map)
        return cls(store, clock, FamilyCatalog(database), feedback_map)

    def families_index(self) -> str:
        """The model database's index: one short line of facts per family and where its full entry is."""
        return json.dumps(
            {
                "families": [
                    {
                        "id": f.id,
                        "name": f.name,
                        "aliases": f.aliases,
                        "prompt_style": f.prompt_style,
                        "uri": f"ategnatos://art/families/{f.id}",
                    }
                    for f in self.catalog.families
                ]
            },
            indent=2,
        )

    def family_json(self, name: str) -> str:
        """One family's full entry (by id, name or alias)."""
        return self.catalog.get(name).model_dump_json(indent=2)

    def feedback_index(self) -> str:
        """The feedback mapping's index: the intensity words and each rule's phrases."""
        rules = [
            {"id": r.id, "phrases": r.phrases, "uri": f"ategnatos://art/feedback/{r.id}"}
            for r in self.feedback_map.rules
        ]
        return json.dumps({"intensity": self.feedback_map.intensity, "rules": rules}, indent=2)

    def feedback_rule_json(self, rule_id: str) -> str:
        """One feedback rule in full."""
        for rule in self.feedback_map.rules:
            if rule.id == rule_id:
                return rule.model_dump_json(indent=2)
        raise NotFoundError(
            f"There is no feedback rule '{rule_id}'.",
            kind="feedback rule",
            name=rule_id,
            hint="Read ategnatos://art/feedback for the list of rules and their ids.",
        )

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
        models: ModelSource | None = None,
    ) -> tuple[PromptAnswer, list[str]]:
        """A new prompt for ``intent``; logged as the next version when project and asset are given.

        With ``models`` (a reachable ComfyUI), checkpoints and LoRAs it lists but the studio lacks are
        registered first, each with its family guessed and the guess said.
        """
        if not intent.strip():
            raise InvalidRequestError("The request is empty.", hint="Describe what the image should show.")
        _check_pair(project, asset)
        inventory = await read_inventory(self.store)
        earlier = await self.log.read(project, asset, must_exist=False) if project and asset else None
        last = earlier.iterations[-1] if earlier is not None and earlier.iterations else None
        inherited = last is not None and not (family or checkpoint)
        if inherited and last is not None:
            family = last.family
        learned: list[LearnedModel] = []
        if models is not None and self._missing(inventory, family, checkpoint, loras):
            learned = await learn_models(self.store, models)
            inventory = await read_inventory(self.store) if learned else inventory
        chosen, how = choose_family(self.catalog, inventory, family, checkpoint)
        if inherited:
            how = f"Same model family as the asset's earlier versions ({chosen.name})."
        model, model_why = pick_checkpoint(
            self.catalog, inventory, chosen, checkpoint, last.checkpoint if inherited and last else None
        )
        how = " ".join(part for part in (how, _learned_note(learned, model, loras), model_why) if part)
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
        draft.checkpoint = model
        answer = PromptAnswer(draft=draft, family_choice=how, project=project, asset=asset, next_step=_MANUAL)
        notices: list[str] = []
        if project and asset:
            async with self.log.update(project, asset, notices) as doc:
                answer.version = add_version(
                    doc, draft, now=self.clock(), origin="built", intent=intent, template=_template(chosen)
                ).version
        self._suggest(answer, chosen)
        return answer, notices

    def _missing(
        self, inventory: StudioInventory, family: str | None, checkpoint: str | None, loras: Sequence[str]
    ) -> bool:
        """Whether the studio lacks something this request needs (so a reachable ComfyUI should be asked)."""
        names = {m.name.casefold() for m in inventory.models} | {lora.name.casefold() for lora in inventory.loras}
        if checkpoint:
            return checkpoint.casefold() not in names or any(_lora_name(s) not in names for s in loras)
        if any(_lora_name(spec) not in names for spec in loras):
            return True
        wanted = self.catalog.find(family) if family else None
        bases = [self.catalog.find(m.base) for m in inventory.models if m.kind == "checkpoint"]
        return not any(b is not None and (wanted is None or b.id == wanted.id) for b in bases)

    def _suggest(self, answer: PromptAnswer, family: Family) -> None:
        answer.comfyui_submit = suggest_submit(
            family, answer.draft, project=answer.project, asset=answer.asset, version=answer.version
        )
        answer.submit_note = handoff_note(family)

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
                    doc,
                    draft,
                    now=self.clock(),
                    origin="adjusted",
                    based_on=source.version,
                    intent=source.intent,
                    template=source.template,
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
        self._suggest(answer, self.catalog.get(answer.draft.family))
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
        entry = entry_from_version(name, it, project, asset, tags, notes, saved_at=self.clock())
        return await self.library_save(entry, overwrite=overwrite)

    async def library_get(self, family: str, name: str) -> LibraryAnswer:
        entry = await self.library.get(self.catalog.get(family).id, name)
        return LibraryAnswer(action="get", entry=entry, path=str(self.library.path_of(entry)))

    async def library_search(self, text: str, tags: Sequence[str], family: str | None) -> LibraryAnswer:
        family_id = self.catalog.get(family).id if family else None
        return LibraryAnswer(action="search", matches=await self.library.search(text, tags=tags, family=family_id))


def _template(family: Family) -> str | None:
    handoff = handoff_for(family)
    return handoff.template if handoff is not None else None


def _lora_name(spec: str) -> str:
    return spec.rsplit(":", 1)[0].strip().casefold() if ":" in spec else spec.strip().casefold()


def _learned_note(learned: Sequence[LearnedModel], checkpoint: str | None, loras: Sequence[str]) -> str:
    """What ComfyUI taught the studio that this prompt uses, with each guess said (the artist can correct it)."""
    used = {(checkpoint or "").casefold(), *(_lora_name(spec) for spec in loras)}
    shown = [item for item in learned if item.name.casefold() in used]
    if not shown:
        return f"Registered {len(learned)} model file(s) ComfyUI lists in the studio." if learned else ""
    return " ".join(f"{item.name} is new from ComfyUI: {item.reason}" for item in shown) + (
        " Correct a wrong guess with studio_register."
    )


def _check_pair(project: str | None, asset: str | None) -> None:
    if bool(project) != bool(asset):
        raise InvalidRequestError(
            "Give both a project and an asset to log this prompt, or neither.",
            hint="For example project 'launch page', asset 'mascot'.",
        )
