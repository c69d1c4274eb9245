"""Two writers, many concurrent updates, and a writer killed mid-write: no update lost, no torn file."""

from __future__ import annotations

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
from ategnatos_mcp.state import GrimoireStore

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

WRITER = Path(__file__).with_name("grimoire_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def _writer(grimoire: Path, prefix: str, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(grimoire), prefix, str(count)],
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
