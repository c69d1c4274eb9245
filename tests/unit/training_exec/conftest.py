"""A real dataset folder and the fake backend install on a local host (a config for it: tests/support/training.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ategnatos_mcp.training.execution.hosts import LocalHost
from tests.support.fake_install import FakeInstall, make_fake_install


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
