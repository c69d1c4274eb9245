"""The fake ComfyUI speaks like the recorded ComfyUI 0.3.64: same message order for fresh and cached runs."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.fake_comfyui import FIXTURES, serve_fake

pytestmark = pytest.mark.integration

_NOISE = ("status", "progress_state")


def _recorded_runs() -> list[list[tuple[str, Any]]]:
    frames = json.loads((FIXTURES / "ws_basic_three_runs.json").read_text(encoding="utf-8"))["frames"]
    runs: list[list[tuple[str, Any]]] = []
    for frame in frames:
        if frame["dir"] == "marker":
            runs.append([])
        elif frame["dir"] == "server->client" and runs and frame["data"]["type"] not in _NOISE:
            data = frame["data"]["data"]
            runs[-1].append((frame["data"]["type"], data.get("node", data.get("nodes"))))
    return runs


async def _run(url: str, http: httpx.AsyncClient, workflow: dict[str, Any]) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    async with connect(f"{url.replace('http', 'ws')}/ws?clientId=fidelity") as ws:
        reply = await http.post(f"{url}/prompt", json={"prompt": workflow, "client_id": "fidelity"})
        assert reply.status_code == 200
        with anyio.fail_after(5):
            async for frame in ws:
                message = json.loads(frame)
                if message["type"] in _NOISE:
                    continue
                data = message["data"]
                seen.append((message["type"], data.get("node", data.get("nodes"))))
                if message["type"] == "executing" and data["node"] is None:
                    break
    return seen


async def test_fresh_and_cached_runs_follow_the_recorded_message_order() -> None:
    workflow = json.loads((FIXTURES / "workflows" / "basic_empty_invert_save.json").read_text(encoding="utf-8"))
    changed = json.loads((FIXTURES / "workflows" / "basic_changed_prefix.json").read_text(encoding="utf-8"))
    fresh, cached, partly_cached = _recorded_runs()
    async with serve_fake() as fake, httpx.AsyncClient() as http:
        assert await _run(fake.url, http, workflow) == fresh
        assert await _run(fake.url, http, workflow) == cached
        assert await _run(fake.url, http, changed) == partly_cached
