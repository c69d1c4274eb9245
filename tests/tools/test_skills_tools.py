"""The skills through a real MCP client: prompts, reference resources, and the tools the skills name."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from ategnatos_mcp.skills_catalog import list_skills, tool_names_in

# DESIGN.md section 3: the tool catalogue. A SKILL.md may name a tool from it before the engineer owning
# it has landed it; any other name is a typo and fails at once.
DESIGN_CATALOGUE = {
    "studio_detect", "studio_register", "comfyui_status", "comfyui_submit", "comfyui_job", "workflow_manage",
    "gpu_offers", "gpu_spinup", "gpu_instances", "gpu_teardown", "remote_deploy",
    "dataset_audit", "dataset_dedupe", "dataset_captions", "dataset_structure",
    "train_plan", "train_validate_environment", "train_dry_run", "launch_training", "training_status",
    "train_evaluate", "art_prompt", "art_iterations", "art_library", "asset_export", "image_info",
    "eye_update", "eye_query",
}  # fmt: skip


async def test_every_tool_a_skill_names_exists_on_the_server(client: Client) -> None:
    registered = {tool.name for tool in (await client.list_tools()).tools}
    named = {skill.name: tool_names_in(skill.body) for skill in list_skills()}
    all_named = set().union(*named.values())

    typos = sorted(all_named - registered - DESIGN_CATALOGUE)
    assert not typos, f"SKILL.md files name tools that are neither registered nor planned: {typos}"
    missing = {skill: sorted(tools - registered) for skill, tools in named.items() if tools - registered}
    if missing:
        # Planned tools owned by other domains that have not landed yet; this turns into a pass as they do.
        pytest.xfail(f"tools named by skills but not registered yet: {missing}")


async def test_each_skill_is_a_prompt_serving_its_skill_md(client: Client) -> None:
    prompts = {prompt.name: prompt for prompt in (await client.list_prompts()).prompts}

    assert {"studio", "art", "train", "eye"} <= prompts.keys()
    assert "cost estimate" in (prompts["studio"].description or "")
    result = await client.get_prompt("train")
    text = result.messages[0].content.text  # type: ignore[union-attr]
    assert text.startswith("# /train")
    assert "GATE 4" in text


async def test_reference_files_are_listed_and_readable(client: Client) -> None:
    listing = json.loads((await client.read_resource("ategnatos://skills")).contents[0].text)  # type: ignore[union-attr]
    art = next(skill for skill in listing["skills"] if skill["name"] == "art")
    uri = next(ref["uri"] for ref in art["references"] if ref["name"] == "weighting.md")

    read = await client.read_resource(uri)

    assert uri == "ategnatos://skills/art/weighting.md"
    assert read.contents[0].text.startswith("# Prompt Weights")  # type: ignore[union-attr]
    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert "ategnatos://skills/{skill}/{file}" in templates
    matrix = await client.read_resource("ategnatos://skills/studio/cuda-matrix.json")
    assert json.loads(matrix.contents[0].text)["schema_version"] == 1  # type: ignore[union-attr]


async def test_skill_md_is_readable_through_the_template(client: Client) -> None:
    read = await client.read_resource("ategnatos://skills/eye/SKILL.md")

    assert "Only the eye writes the eye" in read.contents[0].text  # type: ignore[union-attr]


async def test_unknown_reference_file_is_an_error(client: Client) -> None:
    with pytest.raises(Exception, match="no reference file"):
        await client.read_resource("ategnatos://skills/art/no-such-file.md")


async def test_an_unknown_prompt_or_argument_is_an_invalid_params_error_in_plain_words(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    from mcp import MCPError
    from mcp.types import INVALID_PARAMS

    asked = [("nope", {}), ("studio", {"topic": "x"}), ("\u202e" + "x" * 5000, {}), ("eye", {"a": "1", "b": "2"})]
    answers: list[str] = []
    for name, arguments in asked:
        with pytest.raises(MCPError) as refused:
            await client.get_prompt(name, arguments)
        assert refused.value.code == INVALID_PARAMS, refused.value.message
        answers.append(refused.value.message)
    assert answers[0].startswith("There is no prompt 'nope'. The prompts are: art, eye, studio, train.")
    assert answers[1].startswith("The prompt 'studio' has no argument 'topic' (it takes no arguments).")
    assert "(5,001 characters)" in answers[2] and "\u202e" not in answers[2] and len(answers[2]) < 300
    assert "'a', 'b'" in answers[3] and "without those arguments" in answers[3]
    assert all("Next step:" in answer for answer in answers)
    assert not [r for r in caplog.records if r.exc_info], "a refused prompt request logged a traceback"
