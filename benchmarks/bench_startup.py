"""Start-up cost: spawn the server over stdio until its tools/list answer, against a bare MCPServer.

Prints the median of N runs for each and the ratio (target: at most 1.5x the floor).
Run: .venv/bin/python benchmarks/bench_startup.py [runs]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]

FLOOR_SERVER = """
from mcp.server.mcpserver import MCPServer
server = MCPServer("floor")

@server.tool()
def ping() -> str:
    return "pong"

server.run("stdio")
"""


async def _time_once(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(params) as client:
        tools = await client.list_tools()
        assert tools.tools
    return time.perf_counter() - started


async def _medians(a: StdioServerParameters, b: StdioServerParameters, runs: int) -> tuple[float, float]:
    """Alternate the two so that background load hits both alike."""
    await _time_once(a)  # warm the OS file cache
    await _time_once(b)
    times_a, times_b = [], []
    for _ in range(runs):
        times_a.append(await _time_once(a))
        times_b.append(await _time_once(b))
    return statistics.median(times_a), statistics.median(times_b)


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {"ATEGNATOS_HOME": home, "PATH": os.environ.get("PATH", "")}
        floor_file = Path(home) / "floor_server.py"
        floor_file.write_text(FLOOR_SERVER, encoding="utf-8")
        floor = StdioServerParameters(command=sys.executable, args=[str(floor_file)], env=env)
        ours = StdioServerParameters(command=sys.executable, args=["-m", "ategnatos_mcp", "serve"], env=env, cwd=ROOT)
        floor_s, ours_s = await _medians(floor, ours, runs)
    print(f"bare MCPServer (floor): {floor_s * 1000:7.1f} ms  (median of {runs})")
    print(f"ategnatos-mcp serve:    {ours_s * 1000:7.1f} ms  (median of {runs})")
    print(f"ratio: {ours_s / floor_s:.2f}x the floor (target <= 1.5x)")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 10)
