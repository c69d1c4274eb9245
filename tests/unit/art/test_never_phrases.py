"""NEVER and AVOID cut phrases, never the subject: sentence, comma and mixed requests in every family's syntax."""

from __future__ import annotations

import pytest

from ategnatos_mcp.art import Adjustment, FamilyCatalog, TasteGuidance, apply_adjustments, build_prompt
from ategnatos_mcp.art.phrases import cut_phrases, mentions

NEVER = TasteGuidance(never=["neon colours"])
# The issue's request, the same written as tags, and a mix of both.
REQUESTS = {
    "sentence": (
        "the mascot fox in a cyberpunk city at night with glowing neon signs",
        ["the mascot fox in a cyberpunk city at night"],
        ["with glowing neon signs"],
    ),
    "comma": (
        "mascot fox, cyberpunk city, night, glowing neon signs",
        ["mascot fox", "cyberpunk city", "night"],
        ["glowing neon signs"],
    ),
    "mixed": (
        "neon-lit mascot fox in a cyberpunk city, glowing neon signs, rain",
        ["mascot fox in a cyberpunk city", "rain"],
        ["neon-lit", "glowing neon signs"],
    ),
}
FAMILIES = ["sd15", "sdxl", "pony", "illustrious", "flux1", "sd35"]


@pytest.mark.parametrize("family_id", FAMILIES)
@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_a_never_word_takes_its_phrase_and_leaves_the_subject(
    catalog: FamilyCatalog, family_id: str, kind: str
) -> None:
    family = catalog.get(family_id)
    request, kept, removed = REQUESTS[kind]
    draft = build_prompt(family, request, taste=NEVER)
    for part in kept:
        assert part.casefold() in draft.positive.casefold(), (family_id, kind, draft.positive)
    assert "neon" not in draft.positive.casefold()
    # The note names exactly what went, each phrase once.
    named = [c.split("'")[1] for c in draft.conflicts]
    assert named == removed, draft.conflicts
    negative = {t.text: t.weight for t in draft.negative_terms}
    assert negative["neon colours"] == (1.3 if family.weight_syntax else 1.0)


def test_the_issue_request_no_longer_becomes_only_quality_tags(catalog: FamilyCatalog) -> None:
    sdxl = catalog.get("sdxl")
    draft = build_prompt(sdxl, REQUESTS["sentence"][0], taste=NEVER)
    assert draft.positive == "high quality, detailed, the mascot fox in a cyberpunk city at night"


@pytest.mark.parametrize(
    ("text", "term", "subject", "left", "cut"),
    [
        ("neon fox mascot in a city", "neon", True, "fox mascot in a city", ["neon"]),
        ("glowing neon signs", "neon", False, "", ["glowing neon signs"]),
        ("A fox mascot waves. Neon signs glow behind it. Rain falls.", "neon", True, "A fox mascot waves. Rain falls.",
         ["Neon signs glow behind it"]),
        ("A fox mascot sits in a neon city, smiling.", "neon", True, "A fox mascot sits, smiling.", ["in a neon city"]),
        ("fox mascot with neon colors and rain", "neon colours", False, "fox mascot and rain", ["with neon colors"]),
        ("neon", "neon", True, "", ["neon"]),
    ],
)  # fmt: skip
def test_cut_phrases_removes_the_phrase_that_carries_the_term(
    text: str, term: str, subject: bool, left: str, cut: list[str]
) -> None:
    assert cut_phrases(text, term, is_subject=subject) == (left, cut)


def test_a_generic_word_alone_does_not_match_a_never_term() -> None:
    assert mentions("glowing neon signs", "neon colours")
    assert mentions("bright neon colors", "neon colours")
    assert not mentions("a warm color palette", "neon colours")
    assert not mentions("realistic skin", "photorealistic skin rendering")


def test_feedback_keeps_never_phrases_out_and_does_not_add_avoid_terms(catalog: FamilyCatalog) -> None:
    flux = catalog.get("flux1")
    base = build_prompt(flux, "A fox mascot on a rooftop at dusk")
    changes = Adjustment(add=["glowing neon signs", "soft lens flare", "warm rim light"], why="the artist's words")
    draft = apply_adjustments(base, flux, [], explicit=changes, never=["neon colours"], avoid=["lens flare"])
    assert draft.positive.startswith("A fox mascot on a rooftop at dusk")
    positive = draft.positive.casefold()
    assert "warm rim light" in positive and "neon" not in positive and "flare" not in positive
    assert any("AVOID" in w and "soft lens flare" in w for w in draft.warnings)
    assert any("NEVER" in w and "glowing neon signs" in w for w in draft.warnings)


def test_an_avoid_term_the_request_asks_for_is_kept_and_said(catalog: FamilyCatalog) -> None:
    sdxl = catalog.get("sdxl")
    taste = TasteGuidance(negative=["muddy colours"], avoid_overrides=["lens flare"])  # as query_profile answers
    draft = build_prompt(sdxl, "a fox at sunset with a lens flare", taste=taste)
    assert "lens flare" in draft.positive and "lens flare" not in draft.negative and "muddy colours" in draft.negative
    assert any(e.choice == "kept 'lens flare'" for e in draft.explanations)
