"""Reading the eye and the studio for a prompt (real grimoire store; the eye is written only by its own code)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ategnatos_mcp.art import EyeSuggestion, FamilyCatalog
from ategnatos_mcp.art.taste import choose_family, new_eye_suggestions, read_taste, resolve_loras
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.eye import EYE_DOCUMENT, EyeProfile, apply_change
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio import LoraEntry, ModelEntry, StudioInventory

NOW = datetime(2026, 5, 1, tzinfo=UTC)


async def _eye(store: GrimoireStore, *changes: dict) -> None:
    async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
        for change in changes:
            apply_change(upd.doc, "add", now=NOW, **change)


async def test_never_terms_are_listed_for_the_family_by_alias(tmp_path: Path, catalog: FamilyCatalog) -> None:
    store = GrimoireStore(tmp_path / "grimoire")
    await _eye(
        store,
        {"category": "color", "text": "earth tones"},
        {"category": "anti-preferences", "text": "neon", "level": "never"},
        {"category": "anti-preferences", "text": "chibi", "level": "never", "families": ["NoobAI"]},
        {"category": "anti-preferences", "text": "lens flare", "level": "avoid"},
    )
    taste = await read_taste(store, catalog.get("illustrious"), subject=None, request="a neon fox")
    assert taste.positive == ["earth tones"]
    assert set(taste.never) == {"neon", "chibi"}
    assert taste.never_conflicts == ["neon"]
    assert "lens flare" in taste.negative
    flux = await read_taste(store, catalog.get("flux1"), subject=None, request="a fox")
    assert flux.never == ["neon"]


def test_the_family_comes_from_the_request_a_checkpoint_or_a_single_family_studio(catalog: FamilyCatalog) -> None:
    studio = StudioInventory(models=[ModelEntry(name="ponyDiffusionV6XL", base="Pony")])
    assert choose_family(catalog, studio, "flux", None)[0].id == "flux1"
    assert choose_family(catalog, studio, None, "ponydiffusionv6xl")[0].id == "pony"
    assert choose_family(catalog, studio, None, None)[0].id == "pony"
    mixed = StudioInventory(models=[*studio.models, ModelEntry(name="flux1-dev", base="FLUX.1")])
    with pytest.raises(InvalidRequestError):
        choose_family(catalog, mixed, None, None)
    with pytest.raises(NotFoundError):
        choose_family(catalog, mixed, None, "missing")


def test_loras_get_a_weight_in_their_range_and_warnings_when_they_do_not_fit(catalog: FamilyCatalog) -> None:
    studio = StudioInventory(
        loras=[
            LoraEntry(
                name="inkwash", trigger_words=["inkwash style"], weight_min=0.5, weight_max=0.9, base_model="SDXL"
            ),
            LoraEntry(name="ponystyle", base_model="Pony"),
        ]
    )
    sdxl = catalog.get("sdxl")
    choices, warnings, fits = resolve_loras(studio, ["inkwash"], sdxl, catalog)
    assert [(c[0].name, c[0].weight, c[0].trigger_words) for c in choices] == [("inkwash", 0.7, ["inkwash style"])]
    assert warnings == [] and fits == ["inkwash"]
    _, warnings, _ = resolve_loras(studio, ["inkwash:1.4", "ponystyle"], sdxl, catalog)
    assert len(warnings) == 2 and "outside its recommended range" in warnings[0] and "Pony" in warnings[1]
    with pytest.raises(NotFoundError) as caught:
        resolve_loras(studio, ["nope"], sdxl, catalog)
    assert "inkwash" in caught.value.hint


def test_eye_suggestions_add_new_taste_and_confirm_what_the_eye_holds() -> None:
    profile = EyeProfile()
    apply_change(profile, "add", now=NOW, category="color", text="warm light", terms=["warm color palette", "amber"])
    apply_change(profile, "add", now=NOW, category="style", text="flat colors", level="avoid")
    candidates = [
        EyeSuggestion(category="color", text="warm colour palette", terms=["warm color palette"], reason="Warmer."),
        EyeSuggestion(category="composition", text="clean compositions", terms=["negative space"]),
        EyeSuggestion(category="composition", text="clean compositions", terms=["negative space"]),
        EyeSuggestion(category="style", text="flat colors", terms=["flat colors"]),
    ]
    proposals = new_eye_suggestions(profile, candidates)
    assert [(p.action, p.entry_id, p.text) for p in proposals] == [
        ("confirm", "color-warm-light", "warm light"),
        ("add", None, "clean compositions"),
    ]
    assert "already in the eye" in proposals[0].reason
