"""Building prompts per family: syntax, score tags, weights, the eye's NEVER and AVOID, explanations."""

from __future__ import annotations

import re

import pytest

from ategnatos_mcp.art import FamilyCatalog, LoraUse, TasteGuidance, build_prompt, parse_terms, render_terms
from ategnatos_mcp.art.prompt import strip_weight_syntax

ALL = ["sd15", "sdxl", "pony", "illustrious", "flux1", "sd35"]
WEIGHT = re.compile(r"\([^()]*:\s*\d+(?:\.\d+)?\)")


def test_pony_prompts_start_with_the_full_score_string(catalog: FamilyCatalog) -> None:
    draft = build_prompt(catalog.get("pony"), "fox mascot, waving")
    assert draft.positive.startswith("score_9, score_8_up, score_7_up, score_6_up, score_5_up, score_4_up, ")
    assert "fox mascot, waving" in draft.positive
    assert draft.settings.clip_skip == 2
    assert any(e.choice == "score tags first" for e in draft.explanations)


def test_flux_prompts_carry_no_weight_syntax_even_when_asked(catalog: FamilyCatalog) -> None:
    draft = build_prompt(
        catalog.get("flux1"),
        "A fox mascot with (big eyes:1.4) waving at the viewer",
        style_terms=["(warm light:1.3)"],
        taste=TasteGuidance(positive=["earth tones"]),
    )
    assert not WEIGHT.search(draft.positive)
    assert draft.positive == "A fox mascot with big eyes waving at the viewer. Warm light, earth tones."
    assert all(t.weight == 1.0 for t in draft.positive_terms)
    assert any("does not honour" in w for w in draft.warnings)
    assert draft.settings.cfg == 1.0 and draft.settings.guidance == 3.5


def test_tag_families_keep_weights_the_artist_wrote(catalog: FamilyCatalog) -> None:
    draft = build_prompt(catalog.get("sdxl"), "fox mascot, (big eyes:1.3)")
    assert "(big eyes:1.3)" in draft.positive
    assert [t.weight for t in draft.positive_terms if t.text == "big eyes"] == [1.3]


@pytest.mark.parametrize("family_id", ALL)
def test_never_terms_are_always_in_the_negative(catalog: FamilyCatalog, family_id: str) -> None:
    taste = TasteGuidance(negative=["neon colors"], never=["neon colors"])
    draft = build_prompt(catalog.get(family_id), "a cosy cabin in the woods", taste=taste)
    assert "neon colors" in [t.text for t in draft.negative_terms]
    assert "neon colors" in draft.negative
    assert draft.conflicts == []


@pytest.mark.parametrize("family_id", ALL)
def test_an_intent_asking_for_a_never_term_is_flagged_and_kept_out(catalog: FamilyCatalog, family_id: str) -> None:
    taste = TasteGuidance(negative=["neon"], never=["neon"], never_conflicts=["neon"])
    draft = build_prompt(catalog.get(family_id), "fox mascot, neon sign, night city", taste=taste)
    assert len(draft.conflicts) == 1 and "'neon'" in draft.conflicts[0] and "eye_update" in draft.conflicts[0]
    assert "neon" not in draft.positive.casefold()
    assert "neon" in [t.text for t in draft.negative_terms]
    assert "fox mascot" in draft.positive


def test_a_never_term_the_eye_did_not_flag_is_still_caught_in_the_prompt(catalog: FamilyCatalog) -> None:
    taste = TasteGuidance(never=["lens flare"])
    draft = build_prompt(catalog.get("sdxl"), "hero banner", style_terms=["lens flare"], taste=taste)
    assert "lens flare" not in draft.positive
    assert draft.conflicts and "lens flare" in draft.conflicts[0]


def test_avoid_terms_are_negatives_unless_the_request_overrides_them(catalog: FamilyCatalog) -> None:
    taste = TasteGuidance(negative=["muddy colors"], avoid_overrides=["glossy 3d"])
    draft = build_prompt(catalog.get("sdxl"), "glossy 3d mascot", taste=taste)
    assert "muddy colors" in draft.negative
    assert "glossy 3d" not in draft.negative
    assert any(e.choice == "kept 'glossy 3d'" for e in draft.explanations)


def test_a_default_negative_the_request_asks_for_is_dropped(catalog: FamilyCatalog) -> None:
    draft = build_prompt(catalog.get("sd35"), 'A shop sign with the text "OPEN" in red letters')
    assert "text" not in [t.text for t in draft.negative_terms]
    assert "watermark" in draft.negative


def test_eye_preferences_and_loras_land_in_the_positive_with_reasons(catalog: FamilyCatalog) -> None:
    lora = LoraUse(name="inkwash", weight=0.7, trigger_words=["inkwash style"])
    draft = build_prompt(
        catalog.get("sdxl"),
        "fox mascot",
        taste=TasteGuidance(positive=["earth tones"]),
        loras=[(lora, 0.5, 0.9)],
    )
    assert draft.positive == "high quality, detailed, fox mascot, earth tones, inkwash style"
    assert draft.loras == [lora]
    choices = {e.choice for e in draft.explanations}
    assert {"from your eye", "LoRA inkwash at 0.7", "size 1024x1024", "clip skip 1"} <= choices
    assert all(e.why.strip() for e in draft.explanations)


def test_flux_explains_that_negatives_are_ignored(catalog: FamilyCatalog) -> None:
    draft = build_prompt(catalog.get("flux1"), "A fox mascot")
    notes = [e.why for e in draft.explanations if e.choice == "negative prompt"]
    assert notes and "no effect" in notes[0]


def test_tag_text_round_trips_through_terms(catalog: FamilyCatalog) -> None:
    family = catalog.get("illustrious")
    text = "masterpiece, 1girl, (smile:1.2), looking at viewer, (red scarf:0.8)"
    assert render_terms(parse_terms(text, family), family) == text


def test_nested_weight_syntax_is_stripped_completely() -> None:
    assert strip_weight_syntax("a ((fox:1.2):1.1) in (snow:0.9)") == "a fox in snow"


def test_a_request_that_is_only_a_never_term_leaves_no_empty_prompt_piece(catalog: FamilyCatalog) -> None:
    draft = build_prompt(catalog.get("flux1"), "neon", taste=TasteGuidance(never=["neon"]))
    assert draft.positive_terms == [] and draft.positive == ""
    assert draft.conflicts and draft.negative == "neon"


def test_literal_brackets_in_booru_tags_are_escaped_not_read_as_emphasis(catalog: FamilyCatalog) -> None:
    family = catalog.get("pony")
    terms = parse_terms("sonic (series), (smile), (red scarf:0.8), knuckles \\(character\\)", family)
    assert [(t.text, t.weight) for t in terms] == [
        ("sonic (series)", 1.0),
        ("smile", 1.1),
        ("red scarf", 0.8),
        ("knuckles (character)", 1.0),
    ]
    assert render_terms(terms, family) == "sonic \\(series\\), (smile:1.1), (red scarf:0.8), knuckles \\(character\\)"
    assert render_terms(parse_terms(render_terms(terms, family), family), family) == render_terms(terms, family)


def test_rating_tags_keep_pony_and_noobai_safe_for_work_unless_turned_off(catalog: FamilyCatalog) -> None:
    pony = build_prompt(catalog.get("pony"), "fox mascot")
    assert pony.positive.split(", ")[6] == "rating_safe"
    assert pony.negative.endswith("rating_explicit, rating_questionable")
    noob = build_prompt(catalog.get("illustrious"), "fox mascot")
    assert "highres, safe, fox mascot" in noob.positive and "nsfw" in noob.negative
    off = build_prompt(catalog.get("pony"), "fox mascot", safe_for_work=False)
    assert "rating_" not in off.positive + off.negative
    assert all(e.choice != "safe for work" for e in build_prompt(catalog.get("sdxl"), "fox").explanations)


def test_a_tag_prompt_longer_than_one_clip_chunk_is_warned_about(catalog: FamilyCatalog) -> None:
    many = ", ".join(f"detail{i} thing" for i in range(30))
    assert any("75 at a time" in w for w in build_prompt(catalog.get("sdxl"), many).warnings)
    assert not any("75 at a time" in w for w in build_prompt(catalog.get("sdxl"), "fox mascot").warnings)
    assert not any("at a time" in w for w in build_prompt(catalog.get("flux1"), many).warnings)
