"""Session fixtures: one generated dataset (planted duplicates and problem files) probed once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.runner import ProbeRunner
from ategnatos_mcp.dataset.scan import scan_dataset
from tests.support.datasets import generated_dataset, ground_truth, make_series


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root with ``dataset/`` and ``ground_truth.json``. Read-only: copy before changing anything."""
    return generated_dataset(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def ground(generated: Path) -> dict[str, Any]:
    return ground_truth(generated)


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


@pytest.fixture(scope="session")
def series(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One artist's series: 36 distinct paintings of a few shared motifs, 12 planted copies (see make_series.py)."""
    out = tmp_path_factory.mktemp("series")
    truth = make_series(out, paintings=36, copies=12, seed=11, long_side=384)
    return out / "dataset", truth


@pytest.fixture(scope="session")
def series_probed(series: tuple[Path, dict[str, Any]], probe_cache: ProbeCache) -> dict[str, Any]:
    scan = scan_dataset(series[0])
    runner = ProbeRunner(workers=2)
    try:
        records, _ = anyio.run(runner.probe, scan.images, probe_cache)
    finally:
        runner.close()
    return records
