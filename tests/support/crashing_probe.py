"""Worker functions that die the way a decoder crash kills a process (imported by the worker processes)."""

from __future__ import annotations

import os
from pathlib import Path

from ategnatos_mcp.dataset.probe import ProbeRecord, probe_files


def probe_or_crash(paths: list[str]) -> list[ProbeRecord]:
    """Like the real probe, but a file named ``crash*`` kills the process reading it, every time."""
    if any(Path(p).name.startswith("crash") for p in paths):
        os._exit(11)
    return probe_files(paths)


def crash_once(paths: list[str]) -> list[ProbeRecord]:
    """A file named ``flaky*`` kills the process the first time only (a marker file remembers it)."""
    for p in paths:
        marker = Path(p).with_suffix(".crashed")
        if Path(p).name.startswith("flaky") and not marker.exists():
            marker.write_text("once")
            os._exit(9)
    return probe_files(paths)
