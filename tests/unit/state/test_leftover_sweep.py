"""The leftover sweep decides by the writer's lock, never by age, and a writer never loses its temp file to it;
claims keep two holders apart and never outlive the process holding them."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.dataset.scan import scan_dataset
from ategnatos_mcp.errors import BusyError
from ategnatos_mcp.state.atomic import remove_leftover_temp_files, write_bytes_atomic
from ategnatos_mcp.state.claims import Holder, hold, holding

NOW = datetime(2026, 12, 5, 10, 42, tzinfo=UTC)


def test_a_fresh_leftover_goes_at_once_but_a_locked_one_stays_whatever_its_age(tmp_path: Path) -> None:
    left = tmp_path / ".painting_00.txt.k2j3h4g5.ategnatos.tmp"
    writing = tmp_path / ".painting_01.txt.q1w2e3r4.ategnatos.tmp"
    nested = tmp_path / "sub" / ".x.png.a_b0c9d8.ategnatos.tmp"
    for path in (left, writing, nested):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half a caption")
    os.utime(writing, (1_700_000_000, 1_700_000_000))  # old, but a writer holds it
    fd = os.open(writing, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert remove_leftover_temp_files(tmp_path, recursive=False) == [left]
        assert writing.exists() and nested.exists()
        assert remove_leftover_temp_files(tmp_path) == [nested]
    finally:
        os.close(fd)
    assert remove_leftover_temp_files(tmp_path) == [writing]


def test_a_write_whose_temp_file_a_sweep_took_before_it_was_locked_still_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = tempfile.mkstemp
    swept: list[Path] = []

    def made_then_swept(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = made(*args, **kwargs)
        if not swept:  # another server's sweep, in the instant before this writer locks its file
            swept.extend(remove_leftover_temp_files(tmp_path))
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", made_then_swept)
    write_bytes_atomic(tmp_path / "caption.txt", b"boats at dawn\n")
    assert len(swept) == 1 and not swept[0].exists()
    assert (tmp_path / "caption.txt").read_bytes() == b"boats at dawn\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caption.txt"]


def test_a_dataset_read_for_a_tool_removes_our_leftovers_there_and_in_its_quarantine_only(tmp_path: Path) -> None:
    (tmp_path / "quarantine" / "20261205T104200").mkdir(parents=True)
    keep = [
        tmp_path / "a.png",
        tmp_path / ".a.png.swp",
        tmp_path / "quarantine" / "20261205T104200" / "b.png",
        tmp_path / "quarantine" / "manifest.json",
    ]
    leftovers = [
        tmp_path / ".a.txt.k2j3h4g5.ategnatos.tmp",
        tmp_path / "quarantine" / ".manifest.json.q1w2e3r4.ategnatos.tmp",
    ]
    for path in keep + leftovers:
        path.write_bytes(b"x")
    assert sorted(scan_dataset(tmp_path).leftovers) == sorted(leftovers)
    assert all(p.exists() for p in leftovers)  # a plain scan only reads
    scan_dataset(tmp_path, tidy=True)
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in keep)


def _refuse(holder: Holder) -> BusyError:
    return BusyError(f"busy: {holder.what}{holder.since_text}")


def test_a_claim_keeps_a_second_holder_out_and_says_what_the_first_is_doing(tmp_path: Path) -> None:
    path = tmp_path / "claims" / "training+ink+launch.claim"
    with hold(path, "starting the training run 'ink'", now=NOW, refuse=_refuse):
        with pytest.raises(BusyError) as refused, hold(path, "again", now=NOW, refuse=_refuse):
            pass
        assert refused.value.message == "busy: starting the training run 'ink' since 10:42 UTC"
        assert holding(path) == Holder("starting the training run 'ink'", NOW, os.getpid())
    assert holding(path) is None
    with hold(path, "later", now=NOW, refuse=_refuse):
        pass


def test_a_claim_dies_with_the_process_that_held_it(tmp_path: Path) -> None:
    path = tmp_path / "claims" / "deploy+runpod-pod1.claim"
    code = (
        "import sys; from datetime import datetime, UTC; from pathlib import Path\n"
        "from ategnatos_mcp.state.claims import hold\n"
        "with hold(Path(sys.argv[1]), 'setting up runpod:pod1', now=datetime.now(UTC), refuse=None):\n"
        "    print('held', flush=True); sys.stdin.read()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"held\n"
        held = holding(path)
        assert held is not None and held.what == "setting up runpod:pod1" and held.pid == child.pid
    finally:
        child.kill()  # SIGKILL: the claim is never let go of by the holder itself
        child.wait()
    assert holding(path) is None
    with hold(path, "setting it up again", now=NOW, refuse=_refuse):
        pass
