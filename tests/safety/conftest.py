"""The artist's project every sweep test starts from (see ``artist.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.safety.artist import Snapshot, build_project


@pytest.fixture
def project(home: Path) -> Snapshot:
    """The project built under ``home``, and its snapshot taken before any server starts."""
    build_project(home)
    return Snapshot.take(home)
