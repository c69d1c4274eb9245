"""Taste with weight: confirmations make a preference stronger (capped), contradictions soften it, AVOID weighs
less than NEVER in the negative, and families without weight syntax order instead. Real eye, real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ategnatos_mcp.art import FamilyCatalog, build_prompt
from ategnatos_mcp.art.taste import read_taste
from ategnatos_mcp.eye import EYE_DOCUMENT, EyeProfile, apply_change
from ategnatos_mcp.state import GrimoireStore

DAY = datetime(2026, 5, 1, tzinfo=UTC)


async def _profile(store: GrimoireStore) -> None:
    """One preference per confirmation count 1..7, one contradicted, one disputed, an AVOID and a NEVER."""
    async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
        doc = upd.doc
        for sessions in range(1, 8):
            text = f"tone{sessions}"
            apply_change(doc, "add", now=DAY, category="color", text=text)
            for day in range(1, sessions):
                apply_change(doc, "confirm", now=DAY + timedelta(days=day), text=text)
        apply_change(doc, "add", now=DAY, category="texture", text="brushwork")
        for day in range(1, 4):
            apply_change(doc, "confirm", now=DAY + timedelta(days=day), text="brushwork")
        apply_change(doc, "contradict", now=DAY, text="brushwork")  # 4 sessions, 1 against: counts as 3
        apply_change(doc, "add", now=DAY, category="style", text="chrome")
        apply_change(doc, "contradict", now=DAY, text="chrome")  # disputed: left out
        apply_change(doc, "add", now=DAY, category="anti-preferences", text="glossy", level="avoid")
        apply_change(doc, "add", now=DAY, category="anti-preferences", text="neon", level="never")


async def test_confirmations_weigh_prefer_terms_up_to_a_cap(tmp_path: Path, catalog: FamilyCatalog) -> None:
    store = GrimoireStore(tmp_path / "grimoire")
    await _profile(store)
    sdxl = catalog.get("sdxl")
    taste = await read_taste(store, sdxl, subject=None, request="a fox")
    expected = {"tone1": 1.0, "tone2": 1.05, "tone3": 1.1, "tone4": 1.2, "tone5": 1.3, "tone6": 1.3, "tone7": 1.3}
    assert {t: taste.weights[t] for t in expected} == expected
    assert taste.weights["brushwork"] == 1.1 and taste.sessions["brushwork"] == 3  # softened by its contradiction
    assert "chrome" not in taste.positive  # disputed entries stay out
    draft = build_prompt(sdxl, "a fox", taste=taste)
    weights = {t.text: t.weight for t in draft.positive_terms}
    assert weights["tone5"] == 1.3 and weights["tone1"] == 1.0 and weights["brushwork"] == 1.1
    assert "(tone3:1.1)" in draft.positive and ", tone1" in draft.positive
    negatives = {t.text: t.weight for t in draft.negative_terms}
    assert negatives["glossy"] == 1.0 and negatives["neon"] == 1.3
    assert "(neon:1.3)" in draft.negative and "glossy" in draft.negative.split(", ")
    [eye] = [e for e in draft.explanations if e.choice == "from your eye"]
    assert "tone7 (7 sessions: 1.3)" in eye.why and "5 or more: 1.3" in eye.why


async def test_families_without_weights_order_by_confirmations(tmp_path: Path, catalog: FamilyCatalog) -> None:
    store = GrimoireStore(tmp_path / "grimoire")
    await _profile(store)
    flux = catalog.get("flux1")
    draft = build_prompt(flux, "A fox on a hill", taste=await read_taste(store, flux, subject=None, request="fox"))
    assert "(" not in draft.positive and all(t.weight == 1.0 for t in draft.positive_terms)
    order = [t.text for t in draft.positive_terms[1:]]
    assert order.index("tone7") < order.index("tone4") < order.index("tone2") < order.index("tone1")
    [eye] = [e for e in draft.explanations if e.choice == "from your eye"]
    assert "most confirmed first" in eye.why
