from __future__ import annotations

import os
from pathlib import Path

from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.scan import scan_dataset


def _dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    root.mkdir()
    (root / "a.png").write_bytes(b"one")
    (root / "b.png").write_bytes(b"two")
    return root


def test_unchanged_files_hit_and_touched_files_miss(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    cache = ProbeCache(tmp_path / "cache" / "probe.sqlite", version=1)
    entries = scan_dataset(root).images
    cache.store((e, (e.rel, 1)) for e in entries)
    assert cache.lookup(entries) == {"a.png": ("a.png", 1), "b.png": ("b.png", 1)}
    st = (root / "a.png").stat()
    os.utime(root / "a.png", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert set(cache.lookup(scan_dataset(root).images)) == {"b.png"}


def test_records_of_another_probe_version_are_ignored(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    entries = scan_dataset(root).images
    ProbeCache(tmp_path / "p.sqlite", version=1).store((e, (1,)) for e in entries)
    assert ProbeCache(tmp_path / "p.sqlite", version=2).lookup(entries) == {}


def test_a_damaged_cache_file_is_replaced(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    path = tmp_path / "p.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    cache = ProbeCache(path, version=1)
    entries = scan_dataset(root).images
    assert cache.lookup(entries) == {}
    cache.store((e, (2,)) for e in entries)
    assert len(cache.lookup(entries)) == 2


def test_duplicate_proofs_are_kept_by_contents_and_version(tmp_path: Path) -> None:
    cache = ProbeCache(tmp_path / "c.sqlite", version=1)
    cache.store_proofs({("sha-a", "sha-b", False): 1.5, ("sha-a", "sha-c", True): 9.0}, version=3)
    again = ProbeCache(tmp_path / "c.sqlite", version=1)  # another server process, later
    assert again.proofs(["sha-a", "sha-z"], version=3) == {
        ("sha-a", "sha-b", False): 1.5,
        ("sha-a", "sha-c", True): 9.0,
    }
    assert again.proofs(["sha-b"], version=3) == {}  # looked up by the first file of a pair
    assert again.proofs(["sha-a"], version=4) == {}  # a changed comparison proves again
