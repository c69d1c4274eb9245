"""The model database and feedback map: valid data, every required family, lookups and sizes."""

from __future__ import annotations

import json

import pytest

from ategnatos_mcp.art import FamilyCatalog, FamilyDatabase, FeedbackMap, pick_resolution
from ategnatos_mcp.art.families import DATA_DIR, load_family_database, parse_aspect
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.families import family_ids

REQUIRED = {"sd15", "sdxl", "pony", "illustrious", "flux1", "sd35"}


def test_every_data_file_validates_against_its_model() -> None:
    assert {path.name for path in DATA_DIR.glob("*.json")} == {"model_families.json", "feedback.json"}
    FeedbackMap.model_validate(json.loads((DATA_DIR / "feedback.json").read_text(encoding="utf-8")), strict=False)
    database = load_family_database()
    assert isinstance(database, FamilyDatabase) and database.families


def test_art_data_names_families_only_by_catalogue_id() -> None:
    raw = json.loads((DATA_DIR / "model_families.json").read_text(encoding="utf-8"))
    assert all(set(f) >= {"id", "facts"} and not set(f) & {"name", "aliases", "lora_bases"} for f in raw["families"])
    assert {f["id"] for f in raw["families"]} <= set(family_ids())


def test_database_covers_the_required_families_with_named_sources(catalog: FamilyCatalog) -> None:
    assert REQUIRED <= set(catalog.ids)
    for family in catalog.families:
        assert family.sources and all(s.url.startswith("https://") and s.title for s in family.sources)
        assert family.settings.steps > 0 and family.settings.cfg > 0 and family.facts["settings"].text
        assert family.resolutions["1:1"] == family.native_resolution


def test_prompt_style_and_weight_rules_match_the_families(catalog: FamilyCatalog) -> None:
    assert catalog.get("pony").score_tags[:3] == ["score_9", "score_8_up", "score_7_up"]
    assert catalog.get("pony").settings.clip_skip == 2
    flux = catalog.get("flux1")
    assert (flux.prompt_style, flux.weight_syntax, flux.negative_prompt) == ("sentences", False, False)
    assert flux.settings.guidance == 3.5
    assert {f.id for f in catalog.families if f.prompt_style == "tags"} == {"sd15", "sdxl", "pony", "illustrious"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Pony Diffusion V6 XL", "pony"), ("NoobAI-XL", "illustrious"), ("FLUX.1 dev", "flux1"), ("SD 3.5", "sd35")],
)
def test_families_are_found_by_alias(catalog: FamilyCatalog, name: str, expected: str) -> None:
    assert catalog.get(name).id == expected


def test_unknown_family_names_the_known_ones(catalog: FamilyCatalog) -> None:
    with pytest.raises(NotFoundError) as caught:
        catalog.get("midjourney")
    assert caught.value.kind == "model family"
    assert "pony" in caught.value.hint and "flux1" in caught.value.hint


def test_lora_bases_map_to_their_family(catalog: FamilyCatalog) -> None:
    assert [f.id for f in catalog.for_lora_base("Pony")] == ["pony"]
    assert [f.id for f in catalog.for_lora_base("SDXL 1.0")] == ["sdxl"]
    assert catalog.for_lora_base("something else") == []


@pytest.mark.parametrize(
    ("aspect", "ratio", "size"),
    [
        (None, "1:1", (1024, 1024)),
        ("16:9", "16:9", (1344, 768)),
        ("1200x630", "16:9", (1344, 768)),
        ("portrait", "2:3", (832, 1216)),
        ("9:16", "9:16", (768, 1344)),
    ],
)
def test_sdxl_sizes_come_from_the_trained_buckets(catalog: FamilyCatalog, aspect, ratio, size) -> None:
    assert pick_resolution(catalog.get("sdxl"), aspect) == (ratio, size)


def test_sd15_uses_its_own_smaller_table(catalog: FamilyCatalog) -> None:
    assert pick_resolution(catalog.get("sd15"), "3:2") == ("3:2", (768, 512))


@pytest.mark.parametrize("bad", ["wide-ish", "0:5", "16:0", "1000"])
def test_unreadable_aspect_ratios_are_refused(bad: str) -> None:
    with pytest.raises(InvalidRequestError):
        parse_aspect(bad)
