"""The README's list of tools, resources and prompts is exactly what the server registers."""

from __future__ import annotations

import re
from pathlib import Path

from mcp import Client

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(name: str) -> set[str]:
    text = README.read_text(encoding="utf-8")
    block = text.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->")[0]
    return {match for line in block.splitlines() for match in re.findall(r"`([^`]+)`", line.split(" — ")[0])}


async def test_readme_lists_every_tool_and_no_other(client: Client) -> None:
    registered = {tool.name for tool in (await client.list_tools()).tools}
    assert _section("tools") == registered


async def test_readme_lists_every_resource_and_prompt(client: Client) -> None:
    static = {str(r.uri) for r in (await client.list_resources()).resources}
    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert _section("resources") == static | templates
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert _section("prompts") == prompts
