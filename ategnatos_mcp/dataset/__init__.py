"""Dataset preparation (gate 1): scan, audit, duplicates, captions, kohya structure, quarantine, report."""

from ategnatos_mcp.dataset.scan import DatasetScan, FileEntry, dataset_fingerprint, scan_dataset

__all__ = ["DatasetScan", "FileEntry", "dataset_fingerprint", "scan_dataset"]
