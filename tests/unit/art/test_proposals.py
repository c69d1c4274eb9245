"""What an approval proposes for the eye: the taste entries that shaped the image, feedback hints, LoRA combos."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ategnatos_mcp.art import ArtDirector, FamilyCatalog, FeedbackMap, Iteration, TasteGuidance, build_prompt
from ategnatos_mcp.art.feedback import apply_adjustments, match_feedback
from ategnatos_mcp.art.iterations import add_version, draft_from_iteration, revert_to
from ategnatos_mcp.art.models import AppliedFeedback, ArtAsset, LoraUse
from ategnatos_mcp.art.proposals import approval_evidence, approval_proposals, shaping_entries
from ategnatos_mcp.eye import EYE_DOCUMENT, EyeProfile, apply_change
from ategnatos_mcp.state import GrimoireStore

TODAY = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LAST_WEEK = TODAY - timedelta(days=7)


def _profile() -> EyeProfile:
    profile = EyeProfile()
    apply_change(profile, "add", now=LAST_WEEK, category="color", text="warm light", terms=["warm color palette"])
    apply_change(profile, "add", now=LAST_WEEK, category="texture", text="visible brushwork")
    apply_change(profile, "add", now=LAST_WEEK, category="composition", text="negative space")
    apply_change(profile, "add", now=LAST_WEEK, category="anti-preferences", text="lens flare", level="avoid")
    apply_change(profile, "add", now=TODAY, category="style", text="ink outlines")  # added (so confirmed) today
    return profile


def _approved(catalog: FamilyCatalog, profile: EyeProfile, intent: str = "fox mascot") -> Iteration:
    """Version 1 of an asset, built the way art_prompt builds it: every eye entry that applied is recorded."""
    taste = TasteGuidance(
        positive=["warm color palette", "visible brushwork", "negative space", "ink outlines"],
        negative=["lens flare"],
        entries=[e.id for e in profile.entries],
    )
    doc = ArtAsset(project="launch", asset="mascot")
    return add_version(doc, build_prompt(catalog.get("sdxl"), intent, taste=taste), now=TODAY, origin="built")


def test_the_preferences_that_shaped_the_image_are_proposed_for_confirmation(catalog: FamilyCatalog) -> None:
    profile = _profile()
    it = _approved(catalog, profile)
    assert it.eye_entries == [e.id for e in profile.entries]
    proposals = shaping_entries(profile, it)
    assert [(p.action, p.entry_id) for p in proposals] == [
        ("confirm", "color-warm-light"),
        ("confirm", "texture-visible-brushwork"),
        ("confirm", "composition-negative-space"),
        ("confirm", "style-ink-outlines"),
    ]  # not the AVOID entry: an approval is evidence for what the image shows
    assert "'warm color palette'" in proposals[0].reason and "version 1" in proposals[0].reason


def test_an_entry_whose_terms_feedback_took_out_did_not_shape_the_image(
    catalog: FamilyCatalog, feedback_map: FeedbackMap
) -> None:
    profile = _profile()
    first = _approved(catalog, profile)
    matches, _ = match_feedback("cooler colours", feedback_map)
    cooler = apply_adjustments(draft_from_iteration(first, catalog.get("sdxl")), catalog.get("sdxl"), matches)
    assert "warm color palette" not in cooler.positive and cooler.eye_entries == first.eye_entries
    doc = ArtAsset(project="launch", asset="mascot", iterations=[first])
    second = add_version(doc, cooler, now=TODAY, origin="adjusted", based_on=1)
    ids = [p.entry_id for p in shaping_entries(profile, second)]
    assert "color-warm-light" not in ids and "texture-visible-brushwork" in ids
    # A revert keeps the record of which entries shaped the version it copies.
    assert revert_to(doc, 1, now=TODAY).eye_entries == first.eye_entries


def test_entries_removed_or_turned_into_avoid_since_are_not_proposed(catalog: FamilyCatalog) -> None:
    profile = _profile()
    it = _approved(catalog, profile)
    apply_change(profile, "remove", now=TODAY, entry_id="texture-visible-brushwork")
    apply_change(profile, "set_level", now=TODAY, entry_id="composition-negative-space", level="avoid")
    assert [p.entry_id for p in shaping_entries(profile, it)] == ["color-warm-light", "style-ink-outlines"]


def test_a_version_without_recorded_entries_proposes_no_confirmation(catalog: FamilyCatalog) -> None:
    profile = _profile()
    logged = _approved(catalog, profile, intent="fox mascot, warm color palette, visible brushwork")
    logged.eye_entries = []  # a prompt logged from elsewhere: the eye did not shape it
    assert shaping_entries(profile, logged) == []


def test_approval_proposals_are_deduplicated_skip_today_and_carry_the_evidence(
    catalog: FamilyCatalog, feedback_map: FeedbackMap
) -> None:
    profile = _profile()
    it = _approved(catalog, profile)
    it.applied_feedback = [AppliedFeedback(rule="warmer", phrase="warmer", why="")]  # hint: warm colour palette
    it.loras = [LoraUse(name="inkwash", weight=0.7)]
    it.outputs = ["/p/outputs/mascot_001.png"]
    evidence = approval_evidence("launch", "mascot", it, "  the warm one,\n exactly ")
    assert evidence == 'Approved launch/mascot v1 (/p/outputs/mascot_001.png): "the warm one, exactly".'
    proposals = approval_proposals(
        profile,
        [it],
        it,
        rules=feedback_map.rules,
        family_name="SDXL",
        today=TODAY.date(),
        evidence=evidence,
    )
    assert [(p.action, p.entry_id or p.text) for p in proposals] == [
        ("confirm", "color-warm-light"),  # once, though the 'warmer' feedback hint points at it too
        ("confirm", "texture-visible-brushwork"),
        ("confirm", "composition-negative-space"),
        # not 'ink outlines': it was added today, and eye_update counts one confirmation per day
        ("add", "SDXL with LoRA inkwash at 0.7"),
    ]
    assert {p.note for p in proposals} == {evidence}
    tomorrow = approval_proposals(
        profile, [it], it, rules=[], family_name="SDXL", today=date(2026, 5, 2), evidence=evidence
    )
    assert "style-ink-outlines" in [p.entry_id for p in tomorrow]


def test_evidence_names_at_most_three_images() -> None:
    it = Iteration.model_validate(
        {
            "version": 4,
            "created_at": TODAY,
            "family": "sdxl",
            "positive": "fox",
            "negative": "",
            "positive_terms": [],
            "negative_terms": [],
            "settings": {"sampler": "euler", "scheduler": "normal", "steps": 20, "cfg": 7, "width": 8, "height": 8},
            "outputs": ["a.png", "b.png", "c.png", "d.png", "e.png"],
        }
    )
    assert approval_evidence("p", "a", it, "") == "Approved p/a v4 (a.png, b.png, c.png and 2 more)."


async def test_the_director_records_the_entries_and_proposes_them_on_approval(tmp_path: Path) -> None:
    store = GrimoireStore(tmp_path / "grimoire")
    async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
        apply_change(upd.doc, "add", now=LAST_WEEK, category="color", text="earth tones")
        apply_change(upd.doc, "add", now=LAST_WEEK, category="anti-preferences", text="neon", level="never")
    director = await ArtDirector.open(store, lambda: TODAY)
    built, _ = await director.build("fox mascot", family="sdxl", project="launch", asset="mascot")
    assert set(built.draft.eye_entries) == {"anti-preferences-neon", "color-earth-tones"}
    eye_before = (tmp_path / "grimoire" / ".state" / "eye.json").read_bytes()
    answer = await director.assets.approve("launch", "mascot", 1, notes="lovely")
    assert [(s.action, s.entry_id, s.note) for s in answer.eye_suggestions] == [
        ("confirm", "color-earth-tones", 'Approved launch/mascot v1: "lovely".')
    ]
    assert (tmp_path / "grimoire" / ".state" / "eye.json").read_bytes() == eye_before  # proposals only
