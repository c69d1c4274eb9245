"""Art loop cost: an art_prompt call against a trivial tool call, and logging a version as history grows.

Prints medians and ratios. A prompt build reads the eye, the studio and the library and should stay
within a few times a no-op tool call; logging version 300 rewrites three markdown views, so its cost
grows with the history: the ratio shows by how much.
Run: .venv/bin/python benchmarks/bench_art.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

from ategnatos_mcp.art import ArtDirector
from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import load_settings
from ategnatos_mcp.state import GrimoireStore


async def _median(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def bench_tool_calls(home: Path, runs: int) -> None:
    settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9"})
    app = build_app(settings)
    async with Client(build_server(settings, app=app)) as client:
        args = {"intent": "fox mascot, waving", "family": "pony", "aspect_ratio": "16:9"}
        await client.call_tool("art_prompt", args)  # warm: loads the data files once
        floor = await _median(lambda: client.call_tool("eye_query", {}), runs)
        build = await _median(lambda: client.call_tool("art_prompt", args), runs)
    print(
        f"eye_query (floor): {floor * 1000:.2f} ms   art_prompt build: {build * 1000:.2f} ms   ratio {build / floor:.2f}x"
    )


async def bench_history(home: Path, runs: int) -> None:
    director = await ArtDirector.open(GrimoireStore(home / "grimoire"), lambda: __import__("datetime").datetime.now())
    results = {}
    for size in (10, 300):
        project = f"p{size}"
        for _ in range(size):
            await director.build("fox mascot", family="sdxl", project=project, asset="a")
        results[size] = await _median(
            lambda project=project: director.assets.log_attempt(project, "a", feedback="too dark"), runs
        )
    ratio = results[300] / results[10]
    print(
        f"log at 10 versions: {results[10] * 1000:.2f} ms   at 300: {results[300] * 1000:.2f} ms   ratio {ratio:.2f}x"
    )


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "grimoire").mkdir()
        (home / "workspace").mkdir()
        await bench_tool_calls(home, runs)
        await bench_history(home, runs)


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 30)
