"""Every sentence a prompt tells the artist about a family comes word for word from the model database,
where it has sources; every other sentence talks only about the artist's own request, eye, studio or library."""

from __future__ import annotations

import pytest

from ategnatos_mcp.art import (
    Adjustment,
    FamilyCatalog,
    LibraryMatch,
    LoraUse,
    TasteGuidance,
    apply_adjustments,
    build_prompt,
)
from ategnatos_mcp.art.models import Explanation, Family

TASTE = TasteGuidance(
    positive=["earth tones"],
    negative=["glossy 3d"],
    never=["neon"],
    never_conflicts=["neon"],
    avoid_overrides=["lens flare"],
    combos=["Pony V6 + ink LoRA at 0.7"],
    weights={"earth tones": 1.1},
    sessions={"earth tones": 3},
)
SIMILAR = [LibraryMatch(family="sdxl", name="warm mascot", positive="fox", score=0.5)]


def _all_explanations(family: Family) -> list[Explanation]:
    out: list[Explanation] = []
    for safe in (True, False):
        for aspect in (None, "16:9"):
            draft = build_prompt(
                family,
                "a fox mascot under a neon sign with a lens flare, (waving:1.2)",
                aspect=aspect,
                taste=TASTE,
                loras=[(LoraUse(name="ink", weight=0.7, trigger_words=["inkwash"]), 0.6, 0.8)],
                similar=SIMILAR,
                safe_for_work=safe,
                negative_terms=["blurry"],
            )
            out += draft.explanations
    adjusted = apply_adjustments(draft, family, [], explicit=Adjustment(add=["rain"], why="The artist wants rain."))
    return out + adjusted.explanations


@pytest.mark.parametrize("family_id", ["sd15", "sdxl", "pony", "illustrious", "flux1", "sd35"])
def test_every_why_sentence_is_a_database_fact_or_about_the_artist(catalog: FamilyCatalog, family_id: str) -> None:
    family = catalog.get(family_id)
    used: set[str] = set()
    for explanation in _all_explanations(family):
        if explanation.fact is not None:
            fact = family.facts[explanation.fact]
            assert explanation.why.startswith(fact.text), (family_id, explanation)
            assert fact.sources and all(family.sources[i].url.startswith("https://") for i in fact.sources)
            used.add(explanation.fact)
        else:
            assert family.name not in explanation.why and "trained" not in explanation.why.casefold(), explanation
    assert used == set(family.facts), f"{family_id}: facts never shown: {set(family.facts) - used}"


def test_base_models_are_not_said_to_be_trained_on_tags(catalog: FamilyCatalog) -> None:
    for family_id in ("sd15", "sdxl"):
        family = catalog.get(family_id)
        style = family.facts["prompt_style"].text
        assert "booru" not in style.casefold() and "caption" in style.casefold()
        assert "not trained with quality tags" in family.facts["quality_tags"].text
    for family_id in ("pony", "illustrious"):
        assert "tags" in catalog.get(family_id).facts["prompt_style"].text


def test_a_fact_citing_a_missing_source_is_refused(catalog: FamilyCatalog) -> None:
    raw = catalog.get("sdxl").model_dump()
    raw["facts"]["weights"]["sources"] = [len(raw["sources"])]
    with pytest.raises(ValueError, match="cites a source that is not listed"):
        Family.model_validate(raw)
    del raw["facts"]["clip_skip"]
    with pytest.raises(ValueError, match="facts missing for clip_skip"):
        Family.model_validate(raw)
