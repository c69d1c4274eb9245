"""Session fixtures: one generated dataset (planted duplicates and problem files) probed once."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import anyio
import pytest

from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.runner import ProbeRunner
from ategnatos_mcp.dataset.scan import scan_dataset

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "dataset" / "generated.py"


def load_generator_helper() -> Any:
    spec = importlib.util.spec_from_file_location("ategnatos_dataset_fixture", FIXTURE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root with ``dataset/`` and ``ground_truth.json``. Read-only: copy before changing anything."""
    return load_generator_helper().generated_dataset(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def ground(generated: Path) -> dict[str, Any]:
    return load_generator_helper().ground_truth(generated)


@pytest.fixture(scope="session")
def probe_cache(tmp_path_factory: pytest.TempPathFactory) -> ProbeCache:
    from ategnatos_mcp.dataset.probe import PROBE_VERSION

    return ProbeCache(tmp_path_factory.getbasetemp() / "dataset-probe.sqlite", version=PROBE_VERSION)


@pytest.fixture(scope="session")
def probed(generated: Path, probe_cache: ProbeCache) -> dict[str, Any]:
    """A probe record for every image of the generated dataset, by relative path."""
    scan = scan_dataset(generated / "dataset")
    runner = ProbeRunner(workers=2)
    try:
        records, _ = anyio.run(runner.probe, scan.images, probe_cache)
    finally:
        runner.close()
    return records
