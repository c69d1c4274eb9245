"""Fixtures of the tools tests that live in tests/support: the careless artist's project (bad input, fuzz)."""

from tests.support.careless import art, project

__all__ = ["art", "project"]
