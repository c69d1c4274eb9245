"""A real dataset folder, a config for it, and the fake backend install on a local host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.training import TrainingConfig, resolve_family
from ategnatos_mcp.training.execution.hosts import LocalHost
from ategnatos_mcp.training.presets import build_preset
from tests.support.fake_install import FakeInstall, make_fake_install


def make_config(dataset: Path, images: int = 4, **changes: Any) -> TrainingConfig:
    fam = resolve_family("sdxl")
    values = build_preset("quick", "style", fam, images, has_trigger=True)
    values.update(
        name="ink",
        family="sdxl",
        base_model="/models/base.safetensors",
        dataset_path=str(dataset),
        image_count=images,
        trigger_word="ink_style",
        repeats=1,
        epochs=3,
        batch_size=1,
        gradient_accumulation=1,
    )
    values.update(changes)
    return TrainingConfig(**values)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "dataset"
    folder.mkdir()
    for i in range(8):
        (folder / f"img{i}.png").write_bytes(b"png")
        (folder / f"img{i}.txt").write_text("ink_style, a drawing", encoding="utf-8")
    return folder


@pytest.fixture
def install(tmp_path: Path) -> FakeInstall:
    return make_fake_install(tmp_path / "install")


@pytest.fixture
def local(tmp_path: Path, install: FakeInstall) -> LocalHost:
    return LocalHost(tmp_path / "runs", env=install.env)
