"""Write exported files without ever overwriting one: ``name.png``, then ``name-v2.png``, ``name-v3.png``..."""

from __future__ import annotations

import os
from pathlib import Path

from ategnatos_mcp.state.atomic import temp_beside

__all__ = ["versioned_path", "write_new_file"]

_MAX_VERSIONS = 10_000


def versioned_path(directory: Path, stem: str, suffix: str, version: int) -> Path:
    """The file name for ``version`` (1 has no marker)."""
    return directory / (f"{stem}{suffix}" if version == 1 else f"{stem}-v{version}{suffix}")


def write_new_file(directory: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write ``data`` to the first free versioned name in ``directory`` and return that path.

    The bytes land in a temp file first (named and locked as the leftover sweep knows) and are hard-linked into
    place, so the name appears complete or not at all, and a name taken meanwhile (another export, another server)
    is never replaced.
    """
    with temp_beside(directory / f"{stem}{suffix}") as (fh, tmp):
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
        for version in range(1, _MAX_VERSIONS):
            target = versioned_path(directory, stem, suffix, version)
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            return target
        raise FileExistsError(f"{directory}/{stem}{suffix}: too many versions")
