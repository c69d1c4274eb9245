from __future__ import annotations

import functools
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from PIL import Image

from ategnatos_mcp.dataset import AuditOptions, run_audit
from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.models import AuditResult
from ategnatos_mcp.dataset.report import render_report
from ategnatos_mcp.dataset.runner import ProbeRunner


def _png(path: Path, size: tuple[int, int] = (1024, 1024), colour: tuple[int, int, int] = (200, 40, 90)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour)
    img.paste((colour[2], colour[0], colour[1]), (0, 0, size[0] // (2 + len(path.stem) % 5), size[1] // 3))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    path.write_bytes(buf.getvalue())


def _clean_set(root: Path, n: int = 12) -> Path:
    for i in range(n):
        _png(root / f"img{i:02d}.png", colour=(20 * i % 256, 255 - 15 * i, (90 + 37 * i) % 256))
        (root / f"img{i:02d}.txt").write_text(f"mystyle, picture {i}, flat colour blocks\n", encoding="utf-8")
    return root


async def _audit(root: Path, cache_dir: Path, **options: Any):
    runner = ProbeRunner(workers=1)
    try:
        return await run_audit(
            root, cache=ProbeCache(cache_dir / "c.sqlite", version=1), runner=runner, options=AuditOptions(**options)
        )
    finally:
        runner.close()


async def test_generated_dataset_is_no_go_with_plain_reasons(
    generated: Path, ground: dict[str, Any], probe_cache: ProbeCache, probed: dict[str, Any]
) -> None:
    runner = ProbeRunner(workers=2)
    try:
        result = await run_audit(generated / "dataset", cache=probe_cache, runner=runner, options=AuditOptions())
    finally:
        runner.close()
    assert result.layout == "kohya"
    assert set(result.concepts) == {"10_geometric", "6_texture", "4_scenery"}
    assert result.images == ground["counts"]["image_files_total"]
    unreadable = sum(
        len(ground["bad_files"][k]) for k, v in ground["bad_file_kinds"].items() if v["verdict"] == "unreadable"
    )
    assert result.readable == result.images - unreadable
    assert not result.go
    assert any("cannot be opened" in r for r in result.reasons)
    assert any("no caption" in r for r in result.reasons)
    assert result.captions.orphans == ground["captions"]["orphan_captions"]
    assert sorted(result.captions.empty) == ground["captions"]["empty_captions"]
    assert result.duplicate_groups > 0
    assert result.sparse_buckets  # the extreme-aspect files sit alone in their buckets
    assert result.decoded == 0  # the session fixture already probed every file into this cache


async def test_clean_dataset_is_go_and_reaudit_decodes_nothing(tmp_path: Path) -> None:
    root = _clean_set(tmp_path / "ds")
    first = await _audit(root, tmp_path, trigger_word="mystyle")
    assert first.go, first.reasons
    assert first.layout == "flat"
    assert first.decoded == 12
    assert first.captions.with_trigger == 12
    again = await _audit(root, tmp_path, trigger_word="mystyle")
    assert again.decoded == 0
    assert again.fingerprint == first.fingerprint
    (root / "img03.txt").write_text("another caption, longer now\n", encoding="utf-8")
    changed = await _audit(root, tmp_path, trigger_word="mystyle")
    assert changed.fingerprint != first.fingerprint
    assert changed.captions.without_trigger == 1


async def test_empty_folder_is_no_go(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = await _audit(tmp_path / "empty", tmp_path)
    assert not result.go
    assert result.reasons == ["No usable images were found in this folder."]


async def test_a_dangling_link_is_skipped_not_fatal(tmp_path: Path) -> None:
    root = _clean_set(tmp_path / "ds")
    os.symlink(root / "gone.png", root / "dangling.png")
    result = await _audit(root, tmp_path)
    assert result.readable == 12  # the dangling link is skipped, not fatal


# Run in a child process started as root without the two capabilities that let root read any file
# (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH are dropped from the bounding set before exec): the child stays
# uid 0, so the interpreter and the project under /root still load, but a root-owned file with mode 000
# is refused by the kernel exactly as it would be for an artist's own account.
_DENIED_CHILD = """
import json, sys
from pathlib import Path
import anyio
from ategnatos_mcp.dataset import AuditOptions, run_audit
from ategnatos_mcp.dataset.cache import ProbeCache
from ategnatos_mcp.dataset.runner import ProbeRunner

root, cache = Path(sys.argv[1]), Path(sys.argv[2])
try:
    (root / "img00.png").read_bytes()
    denied = False
except PermissionError:
    denied = True

async def main():
    runner = ProbeRunner(workers=1)
    try:
        return await run_audit(root, cache=ProbeCache(cache, version=1), runner=runner, options=AuditOptions())
    finally:
        runner.close()

print(json.dumps({"denied": denied, "result": anyio.run(main).model_dump(mode="json")}))
"""


# The launcher: drop the two capabilities from the bounding set, then exec the audit child (the exec is what
# takes them out of its permitted set). No preexec_fn: nothing runs between fork and exec in the test process.
_DROP_THEN_EXEC = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
        print("cannot drop capability", cap, os.strerror(ctypes.get_errno()), file=sys.stderr)
        sys.exit(77)
os.execv(sys.executable, [sys.executable, "-c", *sys.argv[1:]])
"""


async def _audit_with_img00_denied(root: Path, cache_dir: Path) -> tuple[AuditResult, bool]:
    (root / "img00.png").chmod(0)
    try:
        if os.geteuid() != 0:
            return await _audit(root, cache_dir), not os.access(root / "img00.png", os.R_OK)
        if not sys.platform.startswith("linux"):
            pytest.skip("root reads any file and this platform cannot drop that capability for one process")
        args = [sys.executable, "-c", _DROP_THEN_EXEC, _DENIED_CHILD, str(root), str(cache_dir / "c.sqlite")]
        run = functools.partial(subprocess.run, args, capture_output=True, text=True, timeout=60)
        proc = await anyio.to_thread.run_sync(run)
        if proc.returncode == 77:  # no CAP_SETPCAP here: root keeps reading everything
            pytest.skip(f"cannot drop root's read-anything capability here: {proc.stderr.strip()}")
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        return AuditResult.model_validate(out["result"]), out["denied"]
    finally:
        (root / "img00.png").chmod(0o644)


async def test_permission_denied_on_one_file_is_a_blocking_problem(tmp_path: Path) -> None:
    root = _clean_set(tmp_path / "ds")
    result, denied = await _audit_with_img00_denied(root, tmp_path)
    assert denied, "the test could not make img00.png unreadable"
    assert not result.go
    assert result.images == 12
    assert result.readable == 11  # every other file is still read and classified
    assert result.decoded == 11  # the walk already finds it unreadable; it is not handed to a decoder
    blocking = [p for p in result.problems if p.severity == "blocking"]
    assert [(p.path, p.problem) for p in blocking] == [("img00.png", "cannot_read")]
    assert "cannot read this file" in blocking[0].message
    assert "permission denied" in blocking[0].message
    assert "permissions" in blocking[0].fix
    assert [p.path for p in result.problems] == ["img00.png"]  # the 11 readable ones are clean
    assert any("cannot be opened" in r for r in result.reasons)
    # Once the artist fixes the permissions (chmod leaves size and mtime alone) a re-audit reads the file.
    again = await _audit(root, tmp_path)
    assert again.go, again.reasons
    assert again.readable == 12
    assert again.decoded == 1


async def test_unreadable_copy_of_a_file_blocks(tmp_path: Path, generated: Path, ground: dict[str, Any]) -> None:
    root = _clean_set(tmp_path / "ds")
    shutil.copy(generated / "dataset" / ground["bad_files"]["truncated_png"][0], root / "cut.png")
    (root / "cut.txt").write_text("x", encoding="utf-8")
    result = await _audit(root, tmp_path)
    assert not result.go
    assert result.problems[0].path == "cut.png"
    assert result.problems[0].problem == "truncated"
    assert "re-export" in result.recommendations[0] or "Move" in result.recommendations[0]


async def test_report_names_the_verdict_and_every_problem(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    root = _clean_set(tmp_path / "ds")
    _png(root / "small.png", (100, 100))
    result = await _audit(root, tmp_path)
    text = render_report(result, name="mystyle", when=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    assert text.startswith("# Dataset report: mystyle\n\n**Verdict: NO-GO**")
    assert "| `small.png` |" in text
    assert "1 image(s) have no caption" in text
