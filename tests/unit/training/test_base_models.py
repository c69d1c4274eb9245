"""The downloadable base models: one or more per family we train, each with its source page."""

from __future__ import annotations

import pytest

from ategnatos_mcp.training import family_names, resolve_family
from ategnatos_mcp.training.base_models import downloadable_models


@pytest.mark.parametrize("family", ["SD1.5", "SDXL", "Pony", "Illustrious", "FLUX.1-dev", "SD3.5"])
def test_every_family_we_train_has_a_downloadable_base_model_with_its_source(family: str) -> None:
    choices = downloadable_models(resolve_family(family))
    assert choices, family
    for choice in choices:
        assert choice.where == "download" and choice.source.startswith("https://")
        assert choice.note  # what to do with it: downloaded by the trainer, or a file to fetch first
        assert "/" in choice.value and " " not in choice.value


def test_gated_models_say_how_to_get_in() -> None:
    [flux] = downloadable_models(resolve_family("flux"))
    assert flux.value == "black-forest-labs/FLUX.1-dev" and "HF_TOKEN" in flux.note
    assert "flux1-dev.safetensors" in flux.note  # what sd-scripts needs instead of a repository id
    [sdxl] = downloadable_models(resolve_family("sdxl"))
    assert "HF_TOKEN" not in sdxl.note


def test_the_catalogue_covers_exactly_the_families_we_train() -> None:
    from ategnatos_mcp.training.base_models import _catalogue  # pyright: ignore[reportPrivateUsage]

    assert set(_catalogue()) - {"_about"} == {resolve_family(n).key for n in family_names()}
