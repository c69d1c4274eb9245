"""The hand-over from a prepared dataset to a planned run, through a real MCP client: gate 1 said per run with the
exact call, every gate refusal naming its call, the preset's repeats, base-model suggestions, one trigger-word
rule, and preview prompts from the captions (so the run really makes previews)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client

from ategnatos_mcp.wiring import Wiring
from tests.support.fake_comfyui import serve_fake
from tests.support.ink_run import ink_dataset, local_fake_install

STYLE_PLAN: dict[str, Any] = {
    "name": "ink",
    "dataset_path": "workspace/datasets/ink-kohya",
    "training_type": "style",
    "family": "SDXL",
    "gpu_vram_gb": 24,
    "preset": "quick",
}


def _text(result: Any) -> str:
    return result.content[0].text


def _call_args(call: str) -> tuple[str, dict[str, Any]]:
    """'tool(a='x', b=1)' as the tool's name and arguments: the call is made exactly as the answer wrote it."""
    tool, _, rest = call.partition("(")
    return tool, eval("dict(" + rest)  # the answers write Python-style calls of literal values


def _plain_captions(home: Path) -> None:
    """Style captions: the content only, no trigger word (the captioning guide's rule for styles)."""
    for caption in (home / "workspace" / "datasets" / "ink").glob("*.txt"):
        number = int(caption.stem.removeprefix("ink"))
        caption.write_text(f"a harbour study number {number}, boats at dawn, low horizon", encoding="utf-8")


async def test_from_a_laid_out_folder_to_previews_every_step_names_its_exact_call(
    client: Client, app: Wiring, home: Path, tmp_path: Path
) -> None:
    fake = local_fake_install(app, tmp_path)
    ink_dataset(home)
    _plain_captions(home)
    laid = await client.call_tool("dataset_structure", {"path": "ink", "name": "ink", "preset": "quick"})
    assert not laid.is_error, laid.content
    assert laid.structured_content["repeats"] == {"20_ink": 20}  # type: ignore[index]  # 10 images x 20 = 200 views
    assert "10 images x 20 repeats = 200 image views per epoch" in _text(laid)
    registered = await client.call_tool(
        "studio_register",
        {"kind": "model", "action": "add", "name": "myxl", "base": "SDXL", "location": "/models/myxl.safetensors"},
    )
    assert not registered.is_error, registered.content

    planned = await client.call_tool("train_plan", STYLE_PLAN)
    assert not planned.is_error, planned.content
    plan = planned.structured_content
    assert plan is not None
    kohya = home / "workspace" / "datasets" / "ink-kohya"
    audit_call = f"dataset_audit(path='{kohya}', training_name='ink')"  # a style: no trigger word to check
    assert plan["dataset_gate_holds"] is False and plan["dataset_audit_call"] == audit_call
    assert f"Gate 1 (dataset) is still open: there is no GO report for {kohya} as it is now" in _text(planned)
    assert audit_call in _text(planned)
    # the preset's repeats were kept: nothing to warn about
    assert plan["config"]["folder_repeats"] == {"20_ink": 20} and "The folder names set the repeats" not in _text(
        planned
    )
    # the base model: the studio's SDXL model, with the downloadable id beside it
    assert plan["config"]["base_model"] == "/models/myxl.safetensors"
    assert [(c["value"], c["where"]) for c in plan["base_model_choices"]] == [
        ("/models/myxl.safetensors", "studio"),
        ("stabilityai/stable-diffusion-xl-base-1.0", "download"),
    ]
    assert "Base model: /models/myxl.safetensors (myxl), chosen because none was named." in _text(planned)
    # previews: two prompts made from the captions, and no trigger-word advice (a style without one is the rule)
    prompts = plan["config"]["sample_prompts"]
    assert prompts == [
        "a harbour study number 0, boats at dawn, low horizon",
        "a harbour study number 9, boats at dawn, low horizon",
    ]
    assert "Preview prompts built from your captions" in _text(planned) and "trigger word" not in _text(planned)

    hash_ = plan["config_hash"]
    early = await client.call_tool("train_confirm", {"name": "ink", "config_hash": hash_})
    assert early.is_error and audit_call in _text(early)
    launch = await client.call_tool("launch_training", {"name": "ink"})
    assert launch.is_error
    for call in (
        audit_call,
        f"train_confirm(name='ink', config_hash='{hash_}')",
        "train_validate_environment(name='ink', host='local')",
        "train_dry_run(name='ink', host='local')",
    ):
        assert call in _text(launch), call

    tool, args = _call_args(audit_call)  # the refusal's call, made as written
    audit = await client.call_tool(tool, args)
    assert audit.structured_content["go"] is True, audit.content  # type: ignore[index]
    gates = await client.call_tool("train_gates", {"name": "ink"})
    step = gates.structured_content["next_step"]  # type: ignore[index]
    assert (
        step
        == f"Show the plan to the artist; after their yes (gate 2): train_confirm(name='ink', config_hash='{hash_}')."
    )
    assert not (await client.call_tool(*_call_args(step.split(": ", 1)[1].rstrip(".")))).is_error
    environment = await client.call_tool(
        "train_validate_environment", {"name": "ink", "backend_dir": fake.backend_dirs["kohya"]}
    )
    assert environment.structured_content["passed"] is True, environment.content  # type: ignore[index]
    gates = await client.call_tool("train_gates", {"name": "ink"})
    assert gates.structured_content["next_step"].endswith("train_dry_run(name='ink', host='local').")  # type: ignore[index]
    dry = await client.call_tool("train_dry_run", {"name": "ink", "wait_seconds": 60})
    assert dry.structured_content["passed"] is True, dry.content  # type: ignore[index]
    assert not (await client.call_tool("launch_training", {"name": "ink"})).is_error
    status = await client.call_tool("training_status", {"name": "ink", "wait_seconds": 60, "previews": 2})
    report = status.structured_content
    assert report is not None and report["state"] == "succeeded", status.content
    assert report["samples"]["total"] == 2 * report["status"]["total_epochs"] > 0  # the promised previews
    assert {s["prompt"] for s in report["samples"]["samples"]} <= set(prompts)
    assert len([c for c in status.content if c.type == "image"]) == 2


async def test_repeats_other_than_the_presets_are_explained_in_the_plan(client: Client, home: Path) -> None:
    ink_dataset(home)
    laid = await client.call_tool("dataset_structure", {"path": "ink", "name": "ink", "repeats": 4})
    assert laid.structured_content["repeats"] == {"4_ink": 4}, laid.content  # type: ignore[index]
    planned = await client.call_tool("train_plan", {**STYLE_PLAN, "base_model": "/models/x.safetensors"})
    plan = planned.structured_content
    assert plan is not None and plan["config"]["folder_repeats"] == {"4_ink": 4}, planned.content
    note = next(n for n in plan["notes"] if n.startswith("The folder names set the repeats"))
    steps = plan["steps"]["total_steps"]
    assert "an epoch holds 40 image views where the quick preset aims at 200" in note
    assert f"the run is {steps} steps instead of {steps * 5}" in note and "it learns less" in note
    assert "overrides={'repeats': 20}" in note and note in _text(planned)
    again = await client.call_tool(
        "train_plan", {**STYLE_PLAN, "base_model": "/models/x.safetensors", "overrides": {"repeats": 20}}
    )
    assert again.structured_content["steps"]["total_steps"] == steps * 5  # type: ignore[index]
    assert not any(n.startswith("The folder names") for n in again.structured_content["notes"])  # type: ignore[index]


async def test_comfyui_checkpoints_of_the_family_are_offered_beside_a_downloadable_id(
    client: Client, app: Wiring, home: Path
) -> None:
    ink_dataset(home)
    async with serve_fake() as comfy:
        comfy.add_model("checkpoints", "sd_xl_base_1.0.safetensors")
        comfy.add_model("checkpoints", "ponyDiffusionV6XL_v6StartWithThisOne.safetensors")
        app.settings.comfyui.urls = [comfy.url]
        xl = await client.call_tool("train_plan", {**STYLE_PLAN, "dataset_path": "ink", "name": "ink-xl"})
        pony = await client.call_tool("train_plan", {**STYLE_PLAN, "dataset_path": "ink", "family": "Pony"})
    assert [(c["value"], c["where"]) for c in xl.structured_content["base_model_choices"]] == [  # type: ignore[index]
        ("sd_xl_base_1.0.safetensors", "comfyui"),
        ("stabilityai/stable-diffusion-xl-base-1.0", "download"),
    ]
    # a ComfyUI file is only a name on that machine: offered, never chosen by itself
    assert xl.structured_content["config"]["base_model"] == "stabilityai/stable-diffusion-xl-base-1.0"  # type: ignore[index]
    assert "sd_xl_base_1.0.safetensors (comfyui)" in _text(xl) and comfy.url in str(xl.structured_content)
    # Pony has no id a trainer can fetch by itself: the refusal names the file to download and what ComfyUI has
    assert pony.is_error
    assert "ponyDiffusionV6XL_v6StartWithThisOne.safetensors: In the checkpoints of the ComfyUI" in _text(pony)
    assert "https://civitai.com/api/download/models/290640: Download " in _text(pony) and "base_model" in _text(pony)
    planned = await client.call_tool(
        "train_plan", {**STYLE_PLAN, "dataset_path": "ink", "family": "Pony", "base_model": "/m/pony.safetensors"}
    )
    # the captions start with the trigger word here, and Pony's prompts get its quality tags first
    prompts = planned.structured_content["config"]["sample_prompts"]  # type: ignore[index]
    assert prompts[0] == "score_9, score_8_up, score_7_up, ink_style, study 0"


async def test_one_trigger_word_rule_in_the_plan_the_captioning_guide_and_the_skill(client: Client, home: Path) -> None:
    ink_dataset(home)
    tools = {t.name: t for t in (await client.list_tools()).tools}
    described = tools["train_plan"].input_schema["properties"]["trigger_word"]["description"]
    assert "for a character, object or concept" in described and "A style has none unless" in described
    guide = (await client.read_resource("ategnatos://dataset/caption-guide")).contents[0].text  # type: ignore[union-attr]
    assert "A *style* LoRA has\n**no trigger word** by default" in guide and "mystyle" not in guide
    assert "starts\nevery caption" in guide
    skill = (await client.get_prompt("train")).messages[0].content.text  # type: ignore[union-attr]
    assert "a character, object or concept gets a trigger word, first in every caption; a\n   style gets none" in skill

    style = await client.call_tool(
        "train_plan", {**STYLE_PLAN, "dataset_path": "ink", "base_model": "/m.safetensors", "trigger_word": "ink_style"}
    )
    assert any("A style usually trains without a trigger word" in n for n in style.structured_content["notes"])  # type: ignore[index]
    person = await client.call_tool(
        "train_plan",
        {
            **STYLE_PLAN,
            "name": "mira",
            "dataset_path": "ink",
            "base_model": "/m.safetensors",
            "training_type": "character",
        },
    )
    assert any("A character LoRA needs a trigger word" in n for n in person.structured_content["notes"])  # type: ignore[index]
