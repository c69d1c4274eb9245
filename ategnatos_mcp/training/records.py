"""The human-readable records of a training run: ``grimoire/training/{name}/*.md``.

They are renderings of the run's state. A record edited by hand since we wrote it is never silently
overwritten: the edited copy is kept beside the new one and a notice says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ategnatos_mcp.state import write_rendered
from ategnatos_mcp.training.models import EnvironmentReport

__all__ = ["RECORD_FILES", "records_dir", "render_environment_md", "write_record"]

RECORD_FILES = ("intent.md", "dataset-report.md", "config.md", "environment.md", "progress.md", "eval.md")


def records_dir(grimoire_dir: Path, name: str) -> Path:
    """Where the records of run ``name`` live."""
    return grimoire_dir / "training" / name


def write_record(
    folder: Path, filename: str, text: str, hashes: dict[str, str], *, only_if_missing: bool = False
) -> str | None:
    """Write one record atomically and remember its hash in ``hashes``; returns a notice if a hand edit was kept.

    Blocking: call it from a worker thread.
    """
    if filename not in RECORD_FILES:
        raise ValueError(f"unknown training record {filename}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    if only_if_missing and path.exists():
        return None
    written = write_rendered(path, text, hashes.get(filename), datetime.now(UTC))
    hashes[filename] = written.hash
    if written.kept is None:
        return None
    if written.hand_kept:  # a record we never wrote (kept by hand before Ategnatos wrote any)
        return f"{filename} was already there; your copy is kept as {written.kept.name} and {filename} was rewritten."
    return f"You had edited {filename} by hand; your copy is kept as {written.kept.name} and {filename} was rewritten."


def render_environment_md(name: str, host: str, report: EnvironmentReport) -> str:
    """environment.md: what the gate-3 check found on ``host``, when the check did not write its own."""
    lines = [
        f"# Environment for {name}",
        "",
        f"Host: {host}",
        "",
        f"Result: {'not checked yet' if report.pending else 'ready' if report.passed else 'NOT ready'}",
    ]
    if report.facts:
        lines += ["", "| check | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in report.facts.items())]
    if report.problems:
        lines += ["", "## Problems", "", *(f"- {p}" for p in report.problems)]
    return "\n".join(lines) + "\n"
