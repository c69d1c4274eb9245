"""Dataset preparation (gate 1): scan, audit, duplicates, captions, kohya structure, quarantine, report.

How this package imports (said once here rather than at each import):

- Pillow and numpy live only in the modules that decode or compare images (``probe``, ``fastdecode``, ``verify``,
  ``dedupe``, ``previews``, ``sheets``). The other modules import those inside the function that needs them, or
  under ``TYPE_CHECKING`` for a type, so the server starts without them (they cost +60 ms after the server's own
  imports; ``tests/tools/test_art_tools.py`` checks, ``benchmarks/bench_startup.py`` measures).
- The names below load on first use (PEP 562): the worker processes that decode images import ``probe`` through
  this package and should not pay for the audit, captions and pydantic models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ategnatos_mcp.dataset.audit import AuditOptions, run_audit
    from ategnatos_mcp.dataset.buckets import Bucketing, make_buckets
    from ategnatos_mcp.dataset.captioning import caption_guide
    from ategnatos_mcp.dataset.captions import CaptionRefused, estimate_tokens, normalise_caption
    from ategnatos_mcp.dataset.dedupe_report import picture_labels, quarantine_summary
    from ategnatos_mcp.dataset.models import (
        AuditResult,
        CaptionReview,
        CaptionSummary,
        CaptionWrite,
        CaptionWriteResult,
        ConceptSpec,
        DedupeResult,
        QuarantineResult,
        StructureResult,
    )
    from ategnatos_mcp.dataset.quarantine import quarantine_files, undo_quarantine
    from ategnatos_mcp.dataset.report import audit_next_step, audit_problem_list, audit_summary, render_report
    from ategnatos_mcp.dataset.scan import DatasetScan, FileEntry, dataset_fingerprint, scan_dataset
    from ategnatos_mcp.dataset.service import DatasetService
    from ategnatos_mcp.dataset.structure import Concept, Protected, build_structure, compute_repeats

_WHERE = {
    "AuditOptions": "ategnatos_mcp.dataset.audit",
    "AuditResult": "ategnatos_mcp.dataset.models",
    "Bucketing": "ategnatos_mcp.dataset.buckets",
    "CaptionRefused": "ategnatos_mcp.dataset.captions",
    "CaptionReview": "ategnatos_mcp.dataset.models",
    "CaptionSummary": "ategnatos_mcp.dataset.models",
    "CaptionWrite": "ategnatos_mcp.dataset.models",
    "CaptionWriteResult": "ategnatos_mcp.dataset.models",
    "Concept": "ategnatos_mcp.dataset.structure",
    "ConceptSpec": "ategnatos_mcp.dataset.models",
    "DatasetScan": "ategnatos_mcp.dataset.scan",
    "DatasetService": "ategnatos_mcp.dataset.service",
    "DedupeResult": "ategnatos_mcp.dataset.models",
    "Protected": "ategnatos_mcp.dataset.structure",
    "QuarantineResult": "ategnatos_mcp.dataset.models",
    "FileEntry": "ategnatos_mcp.dataset.scan",
    "StructureResult": "ategnatos_mcp.dataset.models",
    "audit_next_step": "ategnatos_mcp.dataset.report",
    "audit_problem_list": "ategnatos_mcp.dataset.report",
    "audit_summary": "ategnatos_mcp.dataset.report",
    "build_structure": "ategnatos_mcp.dataset.structure",
    "caption_guide": "ategnatos_mcp.dataset.captioning",
    "compute_repeats": "ategnatos_mcp.dataset.structure",
    "dataset_fingerprint": "ategnatos_mcp.dataset.scan",
    "estimate_tokens": "ategnatos_mcp.dataset.captions",
    "make_buckets": "ategnatos_mcp.dataset.buckets",
    "normalise_caption": "ategnatos_mcp.dataset.captions",
    "quarantine_files": "ategnatos_mcp.dataset.quarantine",
    "picture_labels": "ategnatos_mcp.dataset.dedupe_report",
    "quarantine_summary": "ategnatos_mcp.dataset.dedupe_report",
    "render_report": "ategnatos_mcp.dataset.report",
    "run_audit": "ategnatos_mcp.dataset.audit",
    "scan_dataset": "ategnatos_mcp.dataset.scan",
    "undo_quarantine": "ategnatos_mcp.dataset.quarantine",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AuditOptions",
    "AuditResult",
    "Bucketing",
    "CaptionRefused",
    "CaptionReview",
    "CaptionSummary",
    "CaptionWrite",
    "CaptionWriteResult",
    "Concept",
    "ConceptSpec",
    "DatasetScan",
    "DatasetService",
    "DedupeResult",
    "FileEntry",
    "Protected",
    "QuarantineResult",
    "StructureResult",
    "audit_next_step",
    "audit_problem_list",
    "audit_summary",
    "build_structure",
    "caption_guide",
    "compute_repeats",
    "dataset_fingerprint",
    "estimate_tokens",
    "make_buckets",
    "normalise_caption",
    "quarantine_files",
    "picture_labels",
    "quarantine_summary",
    "render_report",
    "run_audit",
    "scan_dataset",
    "undo_quarantine",
]
