"""ComfyUI overhead and multi-server throughput against the fake ComfyUI (tests/integration/fake_comfyui.py).

1. Per-job overhead, zero execution time: ``comfyui_submit`` through an in-memory MCP client (validation,
   routing, websocket, download, sidecar, previews) from call to images saved, next to a minimal raw
   httpx + websockets script doing the same work (POST, wait on the socket, GET /view, write files),
   and the pool API without MCP in between. Target: at most 1.2x.
2. Throughput: 32 jobs queued one after the other (each submit returns once queued), then all awaited,
   with a fixed execution time, through the pool, over 1 vs 2 fake servers.
   Target: at least 1.8x.

Run: .venv/bin/python benchmarks/bench_comfyui.py [jobs]
"""

from __future__ import annotations

import copy
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402
import httpx  # noqa: E402
from mcp import Client  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from ategnatos_mcp.comfyui import open_pool  # noqa: E402
from ategnatos_mcp.server import build_app, build_server  # noqa: E402
from ategnatos_mcp.settings import ComfyUISettings, load_settings  # noqa: E402
from tests.integration.fake_comfyui import FIXTURES, serve_fake  # noqa: E402

WORKFLOW = json.loads((FIXTURES / "workflows" / "basic_empty_invert_save.json").read_text(encoding="utf-8"))


def _variant(i: int) -> dict[str, Any]:
    wf = copy.deepcopy(WORKFLOW)
    wf["1"]["inputs"]["color"] = i  # a different graph each time, so nothing is served from the cache
    return wf


async def raw_job(http: httpx.AsyncClient, url: str, wf: dict[str, Any], out: Path) -> None:
    """The least a script must do: socket, POST, wait for the end, fetch and write each image."""
    client_id = uuid.uuid4().hex
    outputs: list[dict[str, Any]] = []
    async with connect(f"{url.replace('http', 'ws')}/ws?clientId={client_id}") as ws:
        reply = await http.post(f"{url}/prompt", json={"prompt": wf, "client_id": client_id})
        prompt_id = reply.json()["prompt_id"]
        async for frame in ws:
            if isinstance(frame, bytes):
                continue
            msg = json.loads(frame)
            data = msg.get("data", {})
            if data.get("prompt_id") != prompt_id:
                continue
            if msg["type"] == "executed":
                outputs.extend(data["output"].get("images", []))
            if msg["type"] == "executing" and data.get("node") is None:
                break
    for image in outputs:
        response = await http.get(f"{url}/view", params=image)
        (out / f"{prompt_id}_{image['filename']}").write_bytes(response.content)


async def bench_overhead(jobs: int) -> tuple[float, float, float]:
    """Alternate raw, pool and MCP jobs against one fake, so all three see the same machine load."""
    async with serve_fake(node_seconds=0.0) as fake:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            settings = load_settings(env={"ATEGNATOS_HOME": str(out / "home"), "ATEGNATOS_COMFYUI_URL": fake.url})
            async with (
                httpx.AsyncClient() as http,
                Client(build_server(settings, app=build_app(settings))) as client,
                open_pool([fake.url], settings=settings.comfyui, outputs_dir=out / "pool") as pool,
            ):
                await raw_job(http, fake.url, _variant(5000), out)  # warm up every path
                await pool.wait((await pool.submit(_variant(5001))).job_id, 30)
                await client.call_tool("comfyui_submit", {"workflow": _variant(6000), "wait_seconds": 30})
                raw: list[float] = []
                direct: list[float] = []
                mcp: list[float] = []
                for i in range(jobs):
                    started = time.perf_counter()
                    await raw_job(http, fake.url, _variant(i), out)
                    raw.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    record = await pool.wait((await pool.submit(_variant(2000 + i))).job_id, 30)
                    direct.append(time.perf_counter() - started)
                    assert len(record.saved) == 2, record
                    started = time.perf_counter()
                    result = await client.call_tool(
                        "comfyui_submit", {"workflow": _variant(1000 + i), "wait_seconds": 30}
                    )
                    mcp.append(time.perf_counter() - started)
                    assert result.structured_content and len(result.structured_content["files"]) == 2, result
    return statistics.median(raw), statistics.median(direct), statistics.median(mcp)


async def bench_throughput(jobs: int, servers: int, node_seconds: float) -> float:
    async with anyio.create_task_group() as tg:
        fakes = []
        ready = anyio.Event()
        stop = anyio.Event()

        async def run_fake() -> None:
            async with serve_fake(node_seconds=node_seconds) as fake:
                fakes.append(fake)
                if len(fakes) == servers:
                    ready.set()
                await stop.wait()

        for _ in range(servers):
            tg.start_soon(run_fake)
        await ready.wait()
        urls = [f.url for f in fakes]
        with tempfile.TemporaryDirectory() as tmp:
            settings = ComfyUISettings(urls=urls)
            async with open_pool(urls, settings=settings, outputs_dir=Path(tmp)) as pool:
                started = time.perf_counter()
                records = [await pool.submit(_variant(i)) for i in range(jobs)]  # each returns once queued
                for record in records:
                    done = await pool.wait(record.job_id, 120)
                    assert done.state.value == "succeeded", done
                elapsed = time.perf_counter() - started
                spread = {url: sum(r.server == url for r in records) for url in urls}
        stop.set()
    print(f"  {servers} server(s): jobs per server {sorted(spread.values())}")
    return jobs / elapsed


async def main() -> None:
    # The server logs at INFO, and httpx logs every request at INFO; that is console cost, not ours.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    raw, direct, mcp = await bench_overhead(jobs)
    print(f"per-job, zero execution time (median of {jobs}):")
    print(f"  raw httpx + websockets script : {raw * 1000:7.1f} ms")
    print(f"  pool API (no MCP)             : {direct * 1000:7.1f} ms  ({direct / raw:.2f}x)")
    print(f"  comfyui_submit via MCP        : {mcp * 1000:7.1f} ms")
    print(f"  ratio                         : {mcp / raw:7.2f}x  (target <= 1.2x)")
    node_seconds = 0.05  # 3 nodes -> 0.15 s per job
    one = await bench_throughput(32, 1, node_seconds)
    two = await bench_throughput(32, 2, node_seconds)
    print(f"32 jobs, {node_seconds * 3:.2f} s of execution each:")
    print(f"  1 server : {one:6.2f} jobs/s")
    print(f"  2 servers: {two:6.2f} jobs/s")
    print(f"  ratio    : {two / one:6.2f}x  (target >= 1.8x)")


if __name__ == "__main__":
    anyio.run(main)
