"""What our tool definitions cost a client's model on every turn: name + description + input schema, per tool.

Claude Code puts every connected tool's definition into the context of each request. Prints each tool's bytes
(compact JSON, as sent) and the total against the budget (target: at most 40,000 bytes for all tools).
Run: .venv/bin/python benchmarks/bench_definitions.py
"""

from __future__ import annotations

import tempfile

import anyio
from mcp import Client

from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import load_settings
from ategnatos_mcp.tools._definitions import DEFINITIONS_BUDGET, definition_bytes


async def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(env={"ATEGNATOS_HOME": home, "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:9"})
        async with Client(build_server(settings)) as client:
            tools = (await client.list_tools()).tools
    sizes = sorted(((definition_bytes(t), t.name) for t in tools), reverse=True)
    for size, name in sizes:
        print(f"{name:28} {size:6,} bytes")
    total = sum(size for size, _ in sizes)
    print(
        f"{len(sizes)} tools: {total:,} bytes = {total / DEFINITIONS_BUDGET:.2f}x the budget of {DEFINITIONS_BUDGET:,}"
    )


if __name__ == "__main__":
    anyio.run(main)
