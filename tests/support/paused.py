"""The real server as a subprocess over stdio, held at one file-system step of a tool call (``paused_server.py``),
for as long as a test needs a write under way in another server process; SIGKILLed when the block ends.

``kill_mid_call`` in ``test_sweep_kills.py`` kills at once; this keeps the process (and the ``flock`` its write holds
on its temp file) alive while the test works on the same project from a second server.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

__all__ = ["NO_COMFYUI", "paused_call"]

ROOT = Path(__file__).resolve().parents[2]
NO_COMFYUI = "http://127.0.0.1:9"


@asynccontextmanager
async def paused_call(
    home: Path,
    call: tuple[str, dict[str, Any]],
    pattern: str,
    skip: int,
    *,
    comfyui_url: str = NO_COMFYUI,
    env: dict[str, str] | None = None,
) -> AsyncIterator[str]:
    """Make ``call`` on a server subprocess on ``home``; yields once it stopped before the step into a path holding
    ``pattern`` (after ``skip`` such steps), with the step it stopped before. The server is SIGKILLed on exit.
    ``env``: more environment for the server (e.g. the stand-in trainer's PATH)."""
    env = {**os.environ, **(env or {}), "ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": comfyui_url}
    command = [sys.executable, "-m", "tests.support.paused_server", pattern, str(skip), "call"]
    async with await anyio.open_process(command, env=env, cwd=ROOT) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stdin, stdout = proc.stdin, BufferedByteReceiveStream(proc.stdout)
        stderr = BufferedByteReceiveStream(proc.stderr)

        async def send(message: dict[str, Any]) -> None:
            await stdin.send(json.dumps(message).encode() + b"\n")

        try:
            with anyio.fail_after(60):
                hello = {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                }
                await send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
                assert json.loads(await stdout.receive_until(b"\n", 10_000_000))["id"] == 1
                await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
                params = {"name": call[0], "arguments": call[1]}
                await send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params})
                said: list[str] = []
                try:
                    while not (line := (await stderr.receive_until(b"\n", 1_000_000)).decode()).startswith("paused "):
                        said.append(line)
                except anyio.EndOfStream as exc:
                    raise AssertionError("the server ended before the step to stop at:\n" + "\n".join(said)) from exc
            yield line
        finally:
            proc.kill()  # SIGKILL: no cleanup of any kind runs in the server
            with anyio.fail_after(20):
                await proc.wait()
