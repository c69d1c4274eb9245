"""Shared helpers for the art unit tests: the real bundled data, loaded once per test."""

from __future__ import annotations

import pytest

from ategnatos_mcp.art import FamilyCatalog, FeedbackMap, load_family_database, load_feedback_map


@pytest.fixture
def catalog() -> FamilyCatalog:
    return FamilyCatalog(load_family_database())


@pytest.fixture
def feedback_map() -> FeedbackMap:
    return load_feedback_map()
