"""Two writers, many concurrent updates, and a writer killed mid-write: no update lost, no torn file."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from ategnatos_mcp.eye import EYE_DOCUMENT, EyeProfile
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.state import GrimoireStore

pytestmark = pytest.mark.integration

WRITER = Path(__file__).with_name("grimoire_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def _writer(grimoire: Path, prefix: str, count: int, mode: str = "normal") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(grimoire), prefix, str(count), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


async def test_200_concurrent_updates_and_a_second_process_lose_nothing(client: Client, home: Path) -> None:
    grimoire = home / "grimoire"
    other = _writer(grimoire, "other process", 60)
    acknowledged: list[str] = []

    async def one(n: int) -> None:
        result = await client.call_tool("eye_update", {"action": "add", "category": "color", "text": f"tone {n}"})
        assert not result.is_error
        acknowledged.append(f"tone {n}")

    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            for n in range(200):
                tg.start_soon(one, n)
        out, _ = await anyio.to_thread.run_sync(other.communicate)
    assert other.returncode == 0
    other_acks = [line for line in out.splitlines() if line.startswith("ack ")]
    assert len(acknowledged) == 200 and len(other_acks) == 60

    profile = await GrimoireStore(grimoire).read(EYE_DOCUMENT, EyeProfile)
    texts = {entry.text for entry in profile.entries}
    assert set(acknowledged) <= texts
    assert {f"other process {n}" for n in range(60)} <= texts
    assert len(profile.entries) == 260
    assert profile.revision == 260


async def test_writer_killed_mid_write_leaves_valid_documents(home: Path) -> None:
    grimoire = home / "grimoire"
    writer = _writer(grimoire, "crash test", 100_000)
    assert writer.stdout is not None
    seen = 0
    with anyio.fail_after(60):
        while seen < 40:
            line = await anyio.to_thread.run_sync(writer.stdout.readline)
            assert line, "writer exited early"
            seen += 1
    writer.send_signal(signal.SIGKILL)
    writer.wait()

    raw = json.loads((grimoire / ".state" / "eye.json").read_text(encoding="utf-8"))
    profile = EyeProfile.model_validate(raw)
    assert len(profile.entries) >= seen  # every acknowledged write survived
    assert (grimoire / "eye.md").read_text(encoding="utf-8").startswith("# Taste Profile")
    # The store still works after the crash (the dead process's lock died with it).
    store = GrimoireStore(grimoire)
    async with store.update(EYE_DOCUMENT, EyeProfile) as upd:
        upd.doc.entries = upd.doc.entries[:1]
    assert len((await store.read(EYE_DOCUMENT, EyeProfile)).entries) == 1


async def _kill_when(writer: subprocess.Popen[str], signal_line: str) -> list[str]:
    """Read the writer's lines until ``signal_line`` starts one, then SIGKILL it there; returns what it printed."""
    assert writer.stdout is not None
    lines: list[str] = []
    with anyio.fail_after(60):
        while not (lines and lines[-1].startswith(signal_line)):
            line = await anyio.to_thread.run_sync(writer.stdout.readline)
            assert line, f"writer exited early after {lines}"
            lines.append(line.strip())
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    return lines


def _state(grimoire: Path) -> EyeProfile:
    return EyeProfile.model_validate_json((grimoire / ".state" / "eye.json").read_text(encoding="utf-8"))


async def test_a_kill_between_the_state_write_and_the_render_is_repaired_at_start_up(
    settings: Settings, home: Path
) -> None:
    grimoire = home / "grimoire"
    printed = await _kill_when(_writer(grimoire, "tone", 3, "stop-before-view"), "json-written")
    assert printed == ["ack 0", "ack 1", "ack 2", "json-written 3"]
    assert [e.text for e in _state(grimoire).entries] == ["tone 0", "tone 1", "tone 2", "tone 3"]
    assert "tone 3" not in (grimoire / "eye.md").read_text(encoding="utf-8")  # stale: the render never came

    async with Client(build_server(settings)):
        pass

    assert "- tone 3 [confirmed: 1 session]" in (grimoire / "eye.md").read_text(encoding="utf-8")
    assert _state(grimoire).revision == 4  # re-rendered, not re-written
    assert list(grimoire.glob("eye.edited-*")) == []


async def test_a_hand_edit_of_a_stale_view_keeps_the_entry_the_state_holds(settings: Settings, home: Path) -> None:
    grimoire = home / "grimoire"
    await _kill_when(_writer(grimoire, "tone", 3, "stop-before-view"), "json-written")
    eye_md = grimoire / "eye.md"
    stale = eye_md.read_text(encoding="utf-8")
    # Before any server starts again, the artist edits the file they see: one count raised, one entry
    # removed, one added. "tone 3" is not in it: the kill came before its render.
    edited = (
        stale.replace("- tone 0 [confirmed: 1 session]", "- tone 0 [confirmed: 5 sessions]")
        .replace("- tone 1 [confirmed: 1 session]\n", "")
        .replace("## Color\n- (preferences accumulate here)", "## Color\n- teal shadows")
    )
    eye_md.write_text(edited, encoding="utf-8")

    async with Client(build_server(settings)) as client:
        query = await client.call_tool("eye_query", {"detail": True})

    entries = {e["text"]: e["confirmations"] for e in query.structured_content["entries"]}
    assert entries == {"tone 0": 5, "tone 2": 1, "tone 3": 1, "teal shadows": 1}
    assert query.structured_content["notices"] == [
        "Imported your hand edits of eye.md: 2 added or changed, 1 removed (tone 1)."
    ]
    final = eye_md.read_text(encoding="utf-8")
    assert "- tone 3 [confirmed: 1 session]" in final and "- teal shadows [confirmed: 1 session]" in final


async def test_temp_files_left_by_a_killed_write_are_removed_at_start_up_and_nothing_else(
    settings: Settings, home: Path
) -> None:
    grimoire = home / "grimoire"
    printed = await _kill_when(_writer(grimoire, "tone", 2, "stop-before-rename"), "temp-written")
    leftover = Path(printed[-1].removeprefix("temp-written "))
    assert leftover.parent == grimoire / ".state" and leftover.name.endswith(".ategnatos.tmp")
    assert json.loads(leftover.read_text(encoding="utf-8"))["revision"] == 3  # the write the kill cut off
    assert _state(grimoire).revision == 2  # the old document, whole

    # A write another server is making right now holds its temp file locked, however old the file looks; an
    # unlocked one of our naming is a leftover, however new (the lock decides, see state/atomic.py).
    writing = grimoire / ".state" / ".studio.json.abcd1234.ategnatos.tmp"
    writing.write_text("a write another server is making", encoding="utf-8")
    fresh_leftover = grimoire / ".state" / ".gpu.json.efgh5678.ategnatos.tmp"
    fresh_leftover.write_text("a write killed a moment ago", encoding="utf-8")
    artists = [grimoire / "notes.tmp", grimoire / ".eye.md.abcd1234.tmp"]
    for path in [leftover, writing, *artists]:
        if not path.exists():
            path.write_text("the artist's", encoding="utf-8")
        os.utime(path, (1_700_000_000, 1_700_000_000))  # long ago

    held = os.open(writing, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        async with Client(build_server(settings)) as client:
            query = await client.call_tool("eye_query", {})
    finally:
        os.close(held)

    assert not leftover.exists() and not fresh_leftover.exists()
    assert writing.exists() and all(p.exists() for p in artists)
    assert query.structured_content["positive_terms"] == ["tone 0", "tone 1"]
