"""Presets from conventions.md: values per level, training type and family, each explained in plain words."""

from __future__ import annotations

import pytest

from ategnatos_mcp.training import TrainingConfig, resolve_family
from ategnatos_mcp.training.presets import PRESET_LEVELS, build_preset, explain

TYPES = ("character", "style", "concept", "object")
FAMILIES = ("sd15", "sdxl", "pony", "illustrious", "flux1", "sd35")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("training_type", TYPES)
@pytest.mark.parametrize("level", PRESET_LEVELS)
def test_every_preset_is_a_valid_config_with_an_explanation_per_value(
    level: str, training_type: str, family: str
) -> None:
    values = build_preset(level, training_type, resolve_family(family), 20, has_trigger=True)
    cfg = TrainingConfig(
        name="x", family=family, base_model="m", dataset_path="/d", image_count=20, trigger_word="ohwx", **values
    )
    texts = explain({**cfg.model_dump(), "image_count": 20})
    for key in values:
        if key in ("min_bucket_reso", "max_bucket_reso"):
            continue
        assert texts.get(key, "").endswith("."), key
    assert "{" not in " ".join(texts.values())
    assert cfg.caption_extension == ".txt" and cfg.learning_rate in (1e-4, 1.0)


def test_small_models_aim_for_200_to_400_image_views_per_epoch() -> None:
    sdxl = resolve_family("sdxl")
    views = {
        level: build_preset(level, "character", sdxl, 20, has_trigger=True)["repeats"] * 20 for level in PRESET_LEVELS
    }
    assert views == {"quick": 200, "standard": 300, "thorough": 400}
    assert build_preset("standard", "character", sdxl, 500, has_trigger=True)["repeats"] == 1


def test_flux_length_targets_steps_in_the_documented_range() -> None:
    flux = resolve_family("flux1")
    for level, target in (("quick", 1000), ("standard", 2000), ("thorough", 3000)):
        values = build_preset(level, "character", flux, 10, has_trigger=True)
        steps = values["epochs"] * 10 * values["repeats"]
        assert 500 <= steps <= 4000 and abs(steps - target) <= target * 0.1
    assert build_preset("standard", "character", flux, 10, has_trigger=True)["base_precision"] == "fp8"


def test_styles_freeze_the_text_encoder_and_sd15_styles_train_at_768() -> None:
    sd15 = resolve_family("sd15")
    style = build_preset("standard", "style", sd15, 80, has_trigger=False)
    character = build_preset("standard", "character", sd15, 20, has_trigger=True)
    assert style["text_encoder_lr"] == 0 and style["resolution"] == 768 and style["cache_text_encoder"]
    assert character["text_encoder_lr"] == 5e-5 and not character["cache_text_encoder"]


def test_thorough_uses_prodigy_at_one_with_cosine() -> None:
    values = build_preset("thorough", "character", resolve_family("sdxl"), 20, has_trigger=True)
    assert (values["optimizer"], values["learning_rate"], values["lr_scheduler"]) == ("prodigy", 1.0, "cosine")


def test_tag_based_families_shuffle_tags_and_pin_the_trigger() -> None:
    pony = build_preset("standard", "character", resolve_family("pony"), 20, has_trigger=True)
    sdxl = build_preset("standard", "character", resolve_family("sdxl"), 20, has_trigger=True)
    assert (pony["shuffle_captions"], pony["keep_tokens"]) == (True, 1)
    assert (sdxl["shuffle_captions"], sdxl["keep_tokens"]) == (False, 0)
