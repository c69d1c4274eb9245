"""Dataset preparation (gate 1): scan, audit, duplicates, captions, kohya structure, quarantine, report.

Pillow and numpy are imported only inside the modules that decode or compare images (``probe``,
``dedupe``, ``previews``), which load lazily: importing this package stays cheap.
"""

from ategnatos_mcp.dataset.audit import AuditOptions, run_audit
from ategnatos_mcp.dataset.buckets import Bucketing, make_buckets
from ategnatos_mcp.dataset.captioning import caption_guide
from ategnatos_mcp.dataset.captions import CaptionRefused, estimate_tokens, normalise_caption
from ategnatos_mcp.dataset.models import (
    AuditResult,
    CaptionReview,
    CaptionSummary,
    CaptionWrite,
    CaptionWriteResult,
    ConceptSpec,
    DedupeResult,
    StructureResult,
)
from ategnatos_mcp.dataset.quarantine import quarantine_files, undo_quarantine
from ategnatos_mcp.dataset.report import audit_summary, render_report
from ategnatos_mcp.dataset.scan import DatasetScan, FileEntry, dataset_fingerprint, scan_dataset
from ategnatos_mcp.dataset.service import DatasetService
from ategnatos_mcp.dataset.structure import Concept, build_structure, compute_repeats

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
    "StructureResult",
    "audit_summary",
    "build_structure",
    "caption_guide",
    "compute_repeats",
    "dataset_fingerprint",
    "estimate_tokens",
    "make_buckets",
    "normalise_caption",
    "quarantine_files",
    "render_report",
    "run_audit",
    "scan_dataset",
    "undo_quarantine",
]
