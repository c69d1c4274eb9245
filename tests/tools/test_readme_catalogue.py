"""The README's lists of tools, resources, prompts and environment variables are exactly what the server has."""

from __future__ import annotations

import re
from pathlib import Path

from mcp import Client
from pydantic import AliasChoices, BaseModel

from ategnatos_mcp.settings import Settings

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


def test_readme_names_every_environment_variable_the_settings_read() -> None:
    table = README.read_text(encoding="utf-8").split("| variable | meaning |")[1].split("\n\n")[0]
    named = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    expected = set()
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            continue  # a section: ATEGNATOS_<SECTION>__<KEY>, one row for all
        alias = field.validation_alias
        expected |= set(alias.choices) if isinstance(alias, AliasChoices) else {f"ATEGNATOS_{name.upper()}"}  # type: ignore[arg-type]
    assert expected - named == set(), f"missing from the README's table: {sorted(expected - named)}"
