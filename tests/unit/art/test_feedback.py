"""Feedback → prompt changes, exactly as the feedback data says, for every rule and family."""

from __future__ import annotations

import re

import pytest

from ategnatos_mcp.art import Adjustment, FamilyCatalog, FeedbackMap, apply_adjustments, build_prompt, match_feedback

ALL = ["sd15", "sdxl", "pony", "illustrious", "flux1", "sd35"]


def _texts(terms) -> list[str]:
    return [t.text.casefold() for t in terms]


@pytest.mark.parametrize("family_id", ALL)
def test_every_rule_changes_the_prompt_as_its_data_says(
    catalog: FamilyCatalog, feedback_map: FeedbackMap, family_id: str
) -> None:
    family = catalog.get(family_id)
    base = build_prompt(family, "fox mascot, detailed background, soft focus, serious")
    for rule in feedback_map.rules:
        matches, unknown = match_feedback(rule.phrases[0], feedback_map)
        assert [m.rule.id for m in matches] == [rule.id], rule.phrases[0]
        assert unknown == []
        adj = rule.adjustment_for(family)
        after = apply_adjustments(base, family, matches)
        positive, negative = _texts(after.positive_terms), _texts(after.negative_terms)
        for term in adj.add:
            assert term.casefold() in positive and term.casefold() not in negative, (rule.id, term)
        for term in adj.remove:
            if term not in adj.add:
                assert term.casefold() not in positive, (rule.id, term)
        for term in adj.add_negative:
            assert term.casefold() in negative and term.casefold() not in positive[1:], (rule.id, term)
        if family.settings.guidance is None:
            assert after.settings.cfg == pytest.approx(max(1.0, base.settings.cfg + adj.cfg_delta))
        else:
            assert after.settings.guidance == pytest.approx(base.settings.guidance + adj.guidance_delta)
            assert after.settings.cfg == base.settings.cfg
        assert after.settings.steps == base.settings.steps + adj.steps_delta
        assert [fb.rule for fb in after.applied_feedback] == [rule.id]
        assert after.explanations[0].why == adj.why


def test_every_phrase_finds_its_own_rule(feedback_map: FeedbackMap) -> None:
    for rule in feedback_map.rules:
        for phrase in rule.phrases:
            matches, _ = match_feedback(f"hmm, {phrase}", feedback_map)
            assert rule.id in [m.rule.id for m in matches], phrase


def test_several_pieces_of_feedback_in_one_sentence(feedback_map: FeedbackMap) -> None:
    matches, unknown = match_feedback("Too busy, and a bit warmer; needs more sparkle", feedback_map)
    assert [m.rule.id for m in matches] == ["less-busy", "warmer"]
    assert unknown == ["needs more sparkle"]


def test_negated_feedback_is_returned_to_claude_not_guessed(feedback_map: FeedbackMap) -> None:
    matches, unknown = match_feedback("it's not too dark", feedback_map)
    assert matches == [] and unknown == ["it's not too dark"]


def test_a_phrase_containing_no_is_not_mistaken_for_a_negation(feedback_map: FeedbackMap) -> None:
    matches, _ = match_feedback("no text please", feedback_map)
    assert [m.rule.id for m in matches] == ["no-text"]


def test_unknown_feedback_changes_nothing_and_comes_back(catalog: FamilyCatalog, feedback_map: FeedbackMap) -> None:
    family = catalog.get("sdxl")
    base = build_prompt(family, "fox mascot")
    matches, unknown = match_feedback("make it feel like a Sunday morning", feedback_map)
    after = apply_adjustments(base, family, matches, unrecognised=unknown)
    assert after.positive == base.positive and after.negative == base.negative
    assert after.unrecognized_feedback == ["make it feel like a Sunday morning"]


def test_emphasis_is_a_weight_for_tag_families_and_word_order_for_flux(
    catalog: FamilyCatalog, feedback_map: FeedbackMap
) -> None:
    matches, _ = match_feedback("warmer", feedback_map)
    sdxl = catalog.get("sdxl")
    tagged = apply_adjustments(build_prompt(sdxl, "fox mascot"), sdxl, matches)
    assert "(warm color palette:1.2)" in tagged.positive
    flux = catalog.get("flux1")
    base = build_prompt(flux, "A fox mascot", style_terms=["pastel", "soft golden light"])
    sentence = apply_adjustments(base, flux, [], explicit=Adjustment(emphasize=["soft golden light"]))
    assert not re.search(r":\d", sentence.positive)
    assert sentence.positive == "A fox mascot. Soft golden light, pastel."


def test_repeated_emphasis_is_capped(catalog: FamilyCatalog) -> None:
    family = catalog.get("pony")
    draft = build_prompt(family, "fox")
    for _ in range(6):
        draft = apply_adjustments(draft, family, [], explicit=Adjustment(emphasize=["fox"]))
    assert "(fox:1.5)" in draft.positive


def test_feedback_never_adds_a_never_term(catalog: FamilyCatalog, feedback_map: FeedbackMap) -> None:
    family = catalog.get("sdxl")
    matches, _ = match_feedback("warmer", feedback_map)
    after = apply_adjustments(build_prompt(family, "fox"), family, matches, never=["golden hour lighting"])
    assert "golden hour lighting" not in after.positive
    assert "golden hour lighting" in after.negative
    assert any("NEVER" in w for w in after.warnings)


def test_explicit_changes_from_claude_are_applied_and_explained(catalog: FamilyCatalog) -> None:
    family = catalog.get("sdxl")
    changes = Adjustment(add=["sparkles"], add_negative=["dull"], steps_delta=4, why="More sparkle, as asked.")
    after = apply_adjustments(build_prompt(family, "fox"), family, [], explicit=changes)
    assert after.positive.endswith("fox, sparkles") and after.negative.endswith("dull")
    assert after.settings.steps == family.settings.steps + 4
    assert after.explanations[-1].why == "More sparkle, as asked."


def test_flux_warns_that_negatives_from_feedback_have_no_effect(
    catalog: FamilyCatalog, feedback_map: FeedbackMap
) -> None:
    family = catalog.get("flux1")
    matches, _ = match_feedback("too busy", feedback_map)
    after = apply_adjustments(build_prompt(family, "A fox"), family, matches)
    assert family.negative_note in after.warnings


@pytest.mark.parametrize(
    "remark", ["make the background blurry", "darker hair", "it looks cooler now", "closer to the reference"]
)
def test_remarks_about_one_part_are_not_read_as_whole_image_changes(feedback_map: FeedbackMap, remark: str) -> None:
    matches, unknown = match_feedback(remark, feedback_map)
    assert matches == [] and unknown == [remark]


def test_intensity_words_scale_emphasis_and_settings(catalog: FamilyCatalog, feedback_map: FeedbackMap) -> None:
    family = catalog.get("sdxl")
    base = build_prompt(family, "fox")
    for remark, weight in [("a bit warmer", 1.1), ("warmer", 1.2), ("much warmer", 1.3)]:
        matches, _ = match_feedback(remark, feedback_map)
        assert f"(warm color palette:{weight:g})" in apply_adjustments(base, family, matches).positive, remark
    for remark, cfg in [("slightly more contrast", 6.75), ("more contrast", 7.0), ("way more contrast", 7.25)]:
        matches, _ = match_feedback(remark, feedback_map)
        assert apply_adjustments(base, family, matches).settings.cfg == cfg, remark
