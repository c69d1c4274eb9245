"""What a client learns about our tools before calling one: titles, hints, lean definitions within budget."""

from __future__ import annotations

from mcp import Client

from ategnatos_mcp.tools._definitions import DEFINITIONS_BUDGET, definition_bytes

READ_ONLY = {
    "eye_query",
    "studio_detect",
    "comfyui_status",
    "gpu_offers",
    "gpu_instances",
    "train_gates",
    "training_status",
    "image_info",
}
DESTRUCTIVE = {"gpu_teardown", "dataset_dedupe", "workflow_manage", "eye_update", "studio_register", "comfyui_job"}
OPEN_WORLD = {
    "studio_detect",
    "asset_export",  # may enlarge a small source on ComfyUI
    "training_status",  # reads the training host (SSH) and copies its samples
    "comfyui_status",
    "comfyui_submit",
    "comfyui_job",
    "gpu_offers",
    "gpu_spinup",
    "gpu_instances",
    "gpu_teardown",
    "remote_deploy",
    "train_validate_environment",
    "train_dry_run",
    "launch_training",
    "train_evaluate",
}


async def test_every_tool_has_a_title_and_every_hint_set(client: Client) -> None:
    tools = (await client.list_tools()).tools
    assert len(tools) >= 30
    for tool in tools:
        hints = tool.annotations
        assert tool.title and hints is not None and hints.title == tool.title, tool.name
        assert None not in (
            hints.read_only_hint,
            hints.destructive_hint,
            hints.idempotent_hint,
            hints.open_world_hint,
        ), tool.name
    assert {t.name for t in tools if t.annotations and t.annotations.read_only_hint} == READ_ONLY
    assert {t.name for t in tools if t.annotations and t.annotations.destructive_hint} >= DESTRUCTIVE
    assert {t.name for t in tools if t.annotations and t.annotations.open_world_hint} == OPEN_WORLD


async def test_definitions_are_lean_and_within_budget(client: Client) -> None:
    tools = (await client.list_tools()).tools
    for tool in tools:
        description = tool.description or ""
        assert description and not description[0].isspace(), tool.name
        assert not any(line.startswith("    ") for line in description.splitlines()), tool.name
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert "title" not in prop, (tool.name, name)
            assert {"type": "null"} not in prop.get("anyOf", []) or "default" not in prop, (tool.name, name)
    total = sum(definition_bytes(tool) for tool in tools)
    assert total <= DEFINITIONS_BUDGET, f"all tool definitions take {total:,} bytes (budget {DEFINITIONS_BUDGET:,})"


async def test_every_answer_schema_starts_with_summary_and_next_step(client: Client) -> None:
    for tool in (await client.list_tools()).tools:
        schema = tool.output_schema
        assert schema is not None, tool.name
        assert list(schema["properties"])[:2] == ["summary", "next_step"], tool.name
        assert {"summary", "next_step"} <= set(schema["required"]), tool.name


async def test_every_resource_and_template_has_a_description(client: Client) -> None:
    for resource in (await client.list_resources()).resources:
        assert resource.description, resource.uri
    for template in (await client.list_resource_templates()).resource_templates:
        assert template.description, template.uri_template
