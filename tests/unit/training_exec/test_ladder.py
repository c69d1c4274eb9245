"""The memory-saver rungs of the out-of-memory ladder: only what the backend has, named as its catalogue names it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.training import BACKENDS, RunPaths, TrainingConfig, render_backend
from ategnatos_mcp.training.backends.catalogue import aitoolkit_catalogue, kohya_catalogue, simpletuner_catalogue
from ategnatos_mcp.training.execution.ladder import lower_resolution, memory_rungs, out_of_memory_advice
from tests.support.training import make_config

PATHS = RunPaths(dataset_dir="/data/ink", config_dir="/cfg/ink", output_dir="/out/ink")
EVERY_SAVER_OFF: dict[str, Any] = {
    "gradient_checkpointing": False,
    "cache_latents": False,
    "cache_text_encoder": False,
    "optimizer": "prodigy",
    "learning_rate": 1.0,
}


def _render(backend: str):  # type: ignore[no-untyped-def]
    return lambda cfg: render_backend(cfg, backend, PATHS).files  # type: ignore[arg-type]


def _catalogue_keys(backend: str) -> set[str]:
    if backend == "kohya":
        return {o["name"] for o in kohya_catalogue()["options"]}
    if backend == "simpletuner":
        return {o["name"] for o in simpletuner_catalogue()["options"]}
    return {o["path"].removeprefix("config.process[].") for o in aitoolkit_catalogue()["options"]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_option_a_rung_switches_on_is_in_that_backends_catalogue(backend: str, tmp_path: Path) -> None:
    rungs = memory_rungs(make_config(tmp_path, **EVERY_SAVER_OFF), backend, _render(backend))
    assert rungs, backend
    keys = _catalogue_keys(backend)
    for rung in rungs:
        for option in rung.options:
            key = re.split(r"\s*[=:]\s*", option)[0]
            assert key in keys, f"{backend}: {key}"


@pytest.mark.parametrize(
    ("backend", "family", "expected"),
    [
        (
            "kohya",
            "sdxl",
            ["gradient_checkpointing", "cache_latents", "cache_text_encoder", "optimizer_8bit", "fp8_base"],
        ),
        ("kohya", "sd15", ["gradient_checkpointing", "cache_latents", "optimizer_8bit", "fp8_base"]),  # no TE cache
        ("ai-toolkit", "sdxl", ["gradient_checkpointing", "cache_latents", "optimizer_8bit", "fp8_base"]),
        ("simpletuner", "sdxl", ["gradient_checkpointing", "optimizer_8bit", "fp8_base"]),  # it always caches
    ],
)
def test_rungs_are_what_the_backend_can_switch_on_in_order(
    backend: str, family: str, expected: list[str], tmp_path: Path
) -> None:
    cfg = make_config(tmp_path, family=family, resolution=512 if family == "sd15" else 1024, **EVERY_SAVER_OFF)
    rungs = memory_rungs(cfg, backend, _render(backend))
    assert [r.id for r in rungs] == expected
    assert [r.helps_loading for r in rungs] == [r == "fp8_base" for r in expected]
    assert rungs[-1].overrides == {
        "gradient_checkpointing": True,
        **({"cache_latents": True} if "cache_latents" in expected else {}),
        **({"cache_text_encoder": True} if "cache_text_encoder" in expected else {}),
        "optimizer": "adamw8bit",
        "learning_rate": 1e-4,
        "lr_scheduler": "constant",
        "base_precision": "fp8",
    }
    # each rung's files are the backend's real files for the plan with those settings
    last = TrainingConfig(**{**cfg.model_dump(), **rungs[-1].overrides})
    final = render_backend(last, backend, PATHS).files  # type: ignore[arg-type]
    written = {name: text for rung in rungs for name, text in rung.files.items()}
    assert {name: final[name] for name in written} == written


def test_a_plan_with_every_saver_on_has_no_rung_left(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, base_precision="fp8")  # the presets switch the others on already
    assert memory_rungs(cfg, "kohya", _render("kohya")) == []


def test_a_lower_resolution_is_only_proposed_with_the_exact_new_plan(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    request = {"dataset_path": "/data/ink", "family": "SDXL", "overrides": {"batch_size": 2}}
    advice = out_of_memory_advice(cfg, "ink", request, new_version="ink-v2")
    assert "768 px instead of 1024 px" in advice and "artist's yes" in advice
    assert (
        "train_plan(name='ink', dataset_path='/data/ink', family='SDXL', overrides={'batch_size': 2, "
        "'resolution': 768}) (it plans the next version, 'ink-v2')"
    ) in advice
    small = make_config(tmp_path, family="sd15", resolution=512)
    assert lower_resolution(small) is None
    assert "lowest resolution worth training (512 px)" in out_of_memory_advice(small, "ink", None)
