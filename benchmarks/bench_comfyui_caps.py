"""Memory taken by one oversized ComfyUI answer: read whole (as before the caps) vs read through the client.

A loopback server answers GET /models/loras with a JSON list of model names of SIZE_MB (default 300, the size
of the answer in issue 16). Each way runs in its own process, which reports its peak resident memory; the
script prints both, the growth over an idle process, and the ratio.
Run: .venv/bin/python benchmarks/bench_comfyui_caps.py [SIZE_MB]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import anyio
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ategnatos_mcp.comfyui.client import ComfyUIClient  # noqa: E402
from ategnatos_mcp.errors import UpstreamError  # noqa: E402
from tests.support.hostile_http import Reply, serve_hostile  # noqa: E402

NAME = b'"lora_0000000000000000000000000_v1.safetensors",'  # 49 bytes


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _read(way: str, url: str) -> str:
    async with httpx.AsyncClient(timeout=600) as http:
        if way == "whole":
            names = (await http.get(f"{url}/models/loras")).json()
            return f"{len(names):,} names"
        try:
            await ComfyUIClient(url, http, timeout=600).models("loras")
        except UpstreamError as exc:
            return exc.message
    return "read"


def child(way: str, url: str) -> None:
    outcome = anyio.run(_read, way, url) if way != "idle" else "nothing read"
    print(json.dumps({"peak_mb": _peak_mb(), "outcome": outcome}))


async def main(size_mb: int) -> None:
    chunk = NAME * 1000
    reply = Reply(body=chunk, repeat=size_mb * 1_000_000 // len(chunk), prefix=b"[", suffix=b'"end"]', length=-1)
    async with serve_hostile(lambda path: reply) as server:
        results = {}
        for way in ("idle", "whole", "client"):
            done = await anyio.run_process(
                [sys.executable, __file__, "--child", way, server.url], check=True, stderr=subprocess.STDOUT
            )
            results[way] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    idle = results["idle"]["peak_mb"]
    for way in ("whole", "client"):
        r = results[way]
        print(f"{way:>6}: peak {r['peak_mb']:8.0f} MB (+{r['peak_mb'] - idle:6.0f} MB over idle)  {r['outcome'][:90]}")
    growth_whole = results["whole"]["peak_mb"] - idle
    growth_client = max(results["client"]["peak_mb"] - idle, 1.0)
    print(f"ratio: the client grows {growth_whole / growth_client:.0f}x less than a whole read ({size_mb} MB answer)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 300)
