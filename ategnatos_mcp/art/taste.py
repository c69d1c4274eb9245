"""Reading the eye (taste profile) and the studio inventory for a prompt. Read-only: only the eye writes the eye."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from ategnatos_mcp.art.families import FamilyCatalog
from ategnatos_mcp.art.models import EyeSuggestion, Family, LoraUse, TasteGuidance
from ategnatos_mcp.art.prompt import PREFER_WEIGHTS
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.eye import EYE_DOCUMENT, EyeProfile, Preference, applies_to, query_profile
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio import LoraEntry, StudioInventory, read_studio

__all__ = [
    "LoraChoice",
    "choose_family",
    "new_eye_suggestions",
    "pick_checkpoint",
    "prefer_strength",
    "read_inventory",
    "read_taste",
    "resolve_loras",
]

LoraChoice = tuple[LoraUse, float, float]
_LORA_SPEC = re.compile(r"^(?P<name>.+?)(?::(?P<weight>-?\d+(?:\.\d+)?))?$")


def prefer_strength(entry: Preference) -> tuple[float, int]:
    """A preference's weight and the sessions behind it: confirmations net of contradictions, capped at 5+."""
    sessions = max(1, entry.confirmations - entry.contradictions)
    return PREFER_WEIGHTS[min(sessions, len(PREFER_WEIGHTS)) - 1], sessions


async def read_taste(store: GrimoireStore, family: Family, *, subject: str | None, request: str) -> TasteGuidance:
    """What the eye says for this request, with the NEVER terms listed on their own and prefer terms weighted."""
    profile = await store.read(EYE_DOCUMENT, EyeProfile)
    query = query_profile(profile, family=family.id, subject=subject, request=request)
    never = [
        term
        for entry in profile.entries
        if entry.level == "never" and applies_to(entry, family.id)
        for term in entry.prompt_terms
    ]
    weights: dict[str, float] = {}
    sessions: dict[str, int] = {}
    for entry in (profile.find(entry_id) for entry_id in query.used_entries):
        if entry is None or entry.level != "prefer":
            continue
        weight, count = prefer_strength(entry)
        for term in entry.prompt_terms:
            if term in query.positive_terms and term not in weights:
                weights[term], sessions[term] = weight, count
    return TasteGuidance(
        positive=query.positive_terms,
        negative=query.negative_terms,
        never=list(dict.fromkeys(never)),
        never_conflicts=query.never_conflicts,
        avoid_overrides=query.avoid_overrides,
        combos=query.combos,
        entries=query.used_entries,
        weights=weights,
        sessions=sessions,
    )


async def read_inventory(store: GrimoireStore) -> StudioInventory:
    return await read_studio(store)


def choose_family(
    catalog: FamilyCatalog, inventory: StudioInventory, family: str | None, checkpoint: str | None
) -> tuple[Family, str]:
    """The family to prompt for, and a sentence saying how it was chosen.

    Raises:
        InvalidRequestError: nothing says which family, or the checkpoint's family is unknown.
    """
    if family:
        found = catalog.get(family)
        return found, f"You asked for {found.name}."
    checkpoints = [m for m in inventory.models if m.kind == "checkpoint"]
    if checkpoint:
        model = next((m for m in checkpoints if m.name.casefold() == checkpoint.casefold()), None)
        if model is None:
            raise NotFoundError(
                f"The studio inventory has no checkpoint called '{checkpoint}'.",
                kind="checkpoint",
                name=checkpoint,
                hint="Register it with studio_register, or pass `family` instead.",
            )
        found = catalog.find(model.base) if model.base else None
        if found is None:
            raise InvalidRequestError(
                f"I can't tell which model family '{model.name}' belongs to (its base is '{model.base or 'not set'}').",
                hint=f"Pass `family` as one of: {', '.join(catalog.ids)}.",
            )
        return found, f"{model.name} is a {found.name} checkpoint."
    families = {f.id: f for m in checkpoints if (f := catalog.find(m.base)) is not None}
    if len(families) == 1:
        only = next(iter(families.values()))
        return only, f"The studio's checkpoints are all {only.name}."
    raise InvalidRequestError(
        "Which model will make this? The prompt syntax depends on it.",
        hint=f"Pass `family` ({', '.join(catalog.ids)}) or `checkpoint` (a model from the studio inventory).",
    )


def pick_checkpoint(
    catalog: FamilyCatalog, inventory: StudioInventory, family: Family, given: str | None, earlier: str | None = None
) -> tuple[str | None, str]:
    """The checkpoint to generate with, and a sentence saying why (empty when it was simply asked for)."""
    checkpoints = [m for m in inventory.models if m.kind == "checkpoint"]
    if given:
        named = next((m.name for m in checkpoints if m.name.casefold() == given.casefold()), given)
        return named, ""
    if earlier:
        return earlier, f"Checkpoint {earlier}, as the asset's earlier versions."
    fits = [m.name for m in checkpoints if (found := catalog.find(m.base)) is not None and found.id == family.id]
    if not fits:
        return None, (
            f"No {family.name} checkpoint is in the studio or on a reachable ComfyUI, so the template's default "
            "checkpoint will be used; pass `checkpoint` to choose one."
        )
    others = f" (also: {', '.join(fits[1:])}; pass `checkpoint` to choose)" if len(fits) > 1 else ""
    return fits[0], f"Checkpoint {fits[0]}, the studio's {family.name} checkpoint{others}."


def _default_weight(lora: LoraEntry) -> float:
    return round((lora.weight_min + lora.weight_max) / 2, 2)


def resolve_loras(
    inventory: StudioInventory, wanted: Sequence[str], family: Family, catalog: FamilyCatalog
) -> tuple[list[LoraChoice], list[str], list[str]]:
    """The LoRAs asked for (``name`` or ``name:weight``), warnings, and the names that would fit this family.

    Raises:
        NotFoundError: a LoRA that is not in the studio inventory.
    """
    fits = [lora.name for lora in inventory.loras if family in catalog.for_lora_base(lora.base_model)]
    choices: list[LoraChoice] = []
    warnings: list[str] = []
    for spec in wanted:
        match = _LORA_SPEC.match(spec.strip())
        name = match.group("name").strip() if match else spec.strip()
        lora = next((entry for entry in inventory.loras if entry.name.casefold() == name.casefold()), None)
        if lora is None:
            known = ", ".join(entry.name for entry in inventory.loras) or "none registered"
            raise NotFoundError(
                f"The studio inventory has no LoRA called '{name}'.",
                kind="lora",
                name=name,
                hint=f"Known LoRAs: {known}. Register new ones with studio_register.",
            )
        weight = float(match.group("weight")) if match and match.group("weight") else _default_weight(lora)
        if not lora.weight_min <= weight <= lora.weight_max:
            warnings.append(
                f"LoRA {lora.name} at {weight:g} is outside its recommended range "
                f"{lora.weight_min:g}-{lora.weight_max:g}; expect it to overpower or vanish."
            )
        if lora.base_model and lora.name not in fits:
            warnings.append(
                f"LoRA {lora.name} was made for {lora.base_model}, not {family.name}; it may do little or break the image."
            )
        use = LoraUse(name=lora.name, weight=weight, trigger_words=list(lora.trigger_words))
        choices.append((use, lora.weight_min, lora.weight_max))
    return choices, warnings, fits


def new_eye_suggestions(
    profile: EyeProfile, candidates: Sequence[EyeSuggestion], *, today: date | None = None
) -> list[EyeSuggestion]:
    """What to propose: ``add`` for taste the eye lacks, ``confirm`` for a preference it already holds.

    A ``confirm`` candidate with an ``entry_id`` names its entry; any other candidate matches an entry by its
    text or when all of its terms are among the entry's terms. Entries marked AVOID or NEVER are never
    proposed for confirmation as preferences. Each entry is proposed once; with ``today``, an entry already
    confirmed that day is left out (eye_update counts one confirmation per day).
    """
    proposals: list[EyeSuggestion] = []
    for candidate in candidates:
        terms = {t.casefold() for t in candidate.terms}
        if candidate.action == "confirm" and candidate.entry_id:
            entry = profile.find(candidate.entry_id)
            if entry is None:
                continue
        else:
            entry = next(
                (
                    e
                    for e in profile.entries
                    if e.text.casefold() == candidate.text.casefold()
                    or (terms and terms <= {t.casefold() for t in e.prompt_terms})
                ),
                None,
            )
        if entry is None:
            proposal = candidate
        elif entry.level != candidate.level:
            continue
        elif today is not None and today.isoformat() in entry.confirmation_keys:
            continue
        elif candidate.action == "confirm" and candidate.entry_id:
            proposal = candidate
        else:
            proposal = candidate.model_copy(
                update={
                    "action": "confirm",
                    "entry_id": entry.id,
                    "text": entry.text,
                    "category": entry.category,
                    "reason": f"{candidate.reason} It matches '{entry.text}' already in the eye.".strip(),
                }
            )
        if all(
            (p.action, p.entry_id or p.text) != (proposal.action, proposal.entry_id or proposal.text) for p in proposals
        ):
            proposals.append(proposal)
    return proposals
