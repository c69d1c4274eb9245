"""The named asset specs, read from ``specs.json`` beside this module."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ategnatos_mcp.errors import NotFoundError
from ategnatos_mcp.export.models import AssetSpec, SpecCatalog

__all__ = ["SPECS_FILE", "find_spec", "load_specs"]

SPECS_FILE = Path(__file__).with_name("specs.json")


@cache
def load_specs() -> SpecCatalog:
    """The validated spec catalogue (read once; it ships with the package)."""
    return SpecCatalog.model_validate_json(SPECS_FILE.read_text(encoding="utf-8"))


def find_spec(name: str) -> AssetSpec:
    """The spec called ``name`` (case and ``_``/``-`` insensitive; one word such as "thumbnail" finds a spec
    when only one has it, and names the candidates when several do).

    Raises:
        NotFoundError: no spec has that name.
    """
    wanted = name.strip().lower().replace("_", "-").replace(" ", "-").replace("twitter", "x")
    for spec in load_specs().specs:
        if spec.name == wanted:
            return spec
    words = set(wanted.split("-"))
    close = [spec for spec in load_specs().specs if words & set(spec.name.split("-"))]
    if len(close) == 1:
        return close[0]
    if close:
        listed = ", ".join(f"{s.name} ({s.sizes[0].width}x{s.sizes[0].height})" for s in close)
        raise NotFoundError(
            f"Several export specs match '{name}': {listed}.",
            kind="export spec",
            name=name,
            hint="Say which platform it is for, or give width and height for a custom size.",
        )
    names = ", ".join(spec.name for spec in load_specs().specs)
    raise NotFoundError(
        f"There is no export spec called '{name}'.",
        kind="export spec",
        name=name,
        hint=f"Use one of: {names}; or give width and height for a custom size.",
    )
