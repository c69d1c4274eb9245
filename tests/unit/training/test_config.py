"""The standard config: validation of bad input, the step arithmetic of conventions.md, a stable hash."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.training import TrainingConfig, resolve_family


def _config(**changes: Any) -> TrainingConfig:
    values: dict[str, Any] = {
        "name": "ink",
        "family": "sdxl",
        "base_model": "/models/sdxl.safetensors",
        "dataset_path": "/data/ink",
        "image_count": 20,
        "network_rank": 32,
        "network_alpha": 16,
        "learning_rate": 1e-4,
        "epochs": 10,
        "repeats": 15,
        "resolution": 1024,
    }
    return TrainingConfig(**{**values, **changes})


def test_steps_follow_the_conventions_formula() -> None:
    # steps = E x ceil(N x R / B) / A
    assert _config().total_steps == 10 * 300
    assert _config(batch_size=4).steps_per_epoch == 75
    assert _config(batch_size=4, gradient_accumulation=2).steps_per_epoch == 38
    assert _config(image_count=7, repeats=3, batch_size=2).steps_per_epoch == 11
    assert _config(max_train_steps=500).total_steps == 500
    assert _config(max_train_steps=500).effective_epochs == 2


def test_family_aliases_resolve_to_one_key() -> None:
    assert _config(family="Pony Diffusion").family == "pony"
    assert _config(family="FLUX.1").family == "flux1"
    assert resolve_family("illustrious").kohya.script == "sdxl_train_network.py"


def test_unknown_model_family_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        resolve_family("midjourney")
    assert "midjourney" in raised.value.message
    assert "SDXL" in raised.value.hint
    with pytest.raises(ValidationError):
        _config(family="midjourney")


def test_rank_zero_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        _config(network_rank=0)
    assert raised.value.errors()[0]["loc"] == ("network_rank",)


@pytest.mark.parametrize("word", ["ink, style", "ink\nstyle", "[ink]", "(ink:1.2)", "ink:style", " ink", "a" * 41, ""])
def test_trigger_words_that_would_break_captions_are_refused(word: str) -> None:
    if word == "":
        assert _config(trigger_word=word).trigger_word is None
        return
    with pytest.raises(ValidationError) as raised:
        _config(trigger_word=word)
    assert "trigger word" in str(raised.value)


@pytest.mark.parametrize("word", ["ink_style", "ohwx", "mibera", "my style", "v2.1-ink", "é"])
def test_ordinary_trigger_words_are_accepted(word: str) -> None:
    assert _config(trigger_word=word).trigger_word == word


def test_text_encoder_training_is_refused_for_flux() -> None:
    with pytest.raises(ValidationError, match="image model only"):
        _config(family="flux1", text_encoder_lr=1e-5)


def test_block_swap_is_only_for_families_with_blocks() -> None:
    with pytest.raises(ValidationError, match="block swapping"):
        _config(blocks_to_swap=8)
    assert _config(family="flux1", blocks_to_swap=8).blocks_to_swap == 8


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        _config(netwrok_rank=8)


def test_hash_is_stable_and_changes_with_any_setting() -> None:
    assert _config().config_hash == _config().config_hash
    assert _config().config_hash != _config(epochs=11).config_hash
    assert _config().config_hash != _config(dataset_fingerprint="other").config_hash
    assert len(_config().config_hash) == 16
