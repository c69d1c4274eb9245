"""The training tools through a real MCP client: plan, confirm (form or explicit hash), gates, the resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import ElicitResult

from ategnatos_mcp.dataset import dataset_fingerprint
from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.training import record_dataset_gate, record_training_started
from ategnatos_mcp.wiring import Wiring
from tests.support.ink_run import PLAN_ARGS, placeholder_dataset


async def _plan_with_go_dataset(client: Client, app: Wiring, folder: Path) -> str:
    result = await client.call_tool("train_plan", PLAN_ARGS)
    assert not result.is_error, result.content
    await record_dataset_gate(
        app.store,
        "ink",
        dataset_path=folder,
        fingerprint=dataset_fingerprint(folder),
        go=True,
        reasons=[],
        report_markdown="# GO\n",
    )
    return result.structured_content["config_hash"]  # type: ignore[index]


def _text(result: Any) -> str:
    return result.content[0].text


async def test_train_plan_returns_the_explained_plan_and_writes_files(client: Client, home: Path) -> None:
    placeholder_dataset(home)
    result = await client.call_tool("train_plan", PLAN_ARGS)
    assert not result.is_error, result.content
    plan = result.structured_content
    assert plan is not None
    assert plan["config"]["family"] == "pony" and plan["backend"] == "kohya"
    assert plan["steps"]["total_steps"] == plan["config"]["epochs"] * plan["steps"]["steps_per_epoch"]
    assert plan["fit"] == "fits" and plan["vram"]["low_gb"] < plan["vram"]["gb"] < plan["vram"]["high_gb"]
    assert plan["explanations"]["caption_extension"].startswith("Caption files are '.txt'")
    assert (home / "workspace" / "configs" / "ink" / "ink.toml").is_file()
    summary = _text(result)
    assert plan["config_hash"] in summary and "train_confirm" in summary
    assert plan["notes"] and all(f"Note: {note}" in summary for note in plan["notes"])  # the artist confirms them too
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["train_plan"].output_schema is not None


async def test_confirm_without_a_form_needs_the_explicit_hash(client: Client, app: Wiring, home: Path) -> None:
    config_hash = await _plan_with_go_dataset(client, app, placeholder_dataset(home))
    refused = await client.call_tool("train_confirm", {"name": "ink"})
    assert refused.is_error and f"config_hash='{config_hash}'" in _text(refused)
    wrong = await client.call_tool("train_confirm", {"name": "ink", "config_hash": "0000"})
    assert wrong.is_error and config_hash in _text(wrong)
    confirmed = await client.call_tool("train_confirm", {"name": "ink", "config_hash": config_hash})
    assert not confirmed.is_error, confirmed.content
    status = confirmed.structured_content
    assert status is not None and status["confirmed_config_hash"] == config_hash
    assert [g["status"] for g in status["gates"]] == ["passed", "passed", "open", "open"]
    assert "explicit" in status["gates"][1]["detail"]


def _form(action: str, confirm: bool, asked: list[str]) -> Any:
    async def callback(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content={"confirm": confirm} if action == "accept" else None)  # type: ignore[arg-type]

    return callback


async def test_confirm_asks_the_artist_through_a_form_when_the_client_can(
    settings: Settings, app: Wiring, home: Path
) -> None:
    folder = placeholder_dataset(home)
    asked: list[str] = []
    async with Client(
        build_server(settings, app=app), raise_exceptions=False, elicitation_callback=_form("accept", True, asked)
    ) as client:
        config_hash = await _plan_with_go_dataset(client, app, folder)
        result = await client.call_tool("train_confirm", {"name": "ink"})
    assert not result.is_error, result.content
    assert len(asked) == 1 and config_hash in asked[0]
    assert "elicitation" in result.structured_content["gates"][1]["detail"]  # type: ignore[index]


async def test_a_trained_run_is_not_confirmed_again_and_its_new_version_is_asked_for_by_name(
    settings: Settings, app: Wiring, home: Path
) -> None:
    folder = placeholder_dataset(home)
    asked: list[str] = []
    async with Client(
        build_server(settings, app=app), raise_exceptions=False, elicitation_callback=_form("accept", True, asked)
    ) as client:
        config_hash = await _plan_with_go_dataset(client, app, folder)
        assert not (await client.call_tool("train_confirm", {"name": "ink"})).is_error
        await record_training_started(
            app.store, "ink", host="local", config_hash=config_hash, started_at=app.clock(), resumed=False
        )  # launch_training's record (the stand-in trainer's runs are in test_run_versions_tools.py)
        again = await client.call_tool("train_confirm", {"name": "ink"})
        assert again.is_error and "'ink' has already been trained" in _text(again), _text(again)
        assert len(asked) == 1  # the artist was not asked about a run that will not train again
        planned = await client.call_tool("train_plan", PLAN_ARGS)
        assert planned.structured_content["name"] == "ink-v2", planned.content  # type: ignore[index]
        new_hash = planned.structured_content["config_hash"]  # type: ignore[index]
        confirmed = await client.call_tool("train_confirm", {"name": "ink-v2"})
    assert not confirmed.is_error, confirmed.content
    assert len(asked) == 2 and "'ink-v2'" in asked[1] and new_hash in asked[1]
    assert confirmed.structured_content["confirmed_config_hash"] == new_hash != config_hash  # type: ignore[index]


@pytest.mark.parametrize(("action", "confirm"), [("accept", False), ("decline", False), ("cancel", False)])
async def test_a_form_answered_no_records_nothing(
    settings: Settings, app: Wiring, home: Path, action: str, confirm: bool
) -> None:
    folder = placeholder_dataset(home)
    asked: list[str] = []
    server = build_server(settings, app=app)
    async with Client(server, raise_exceptions=False, elicitation_callback=_form(action, confirm, asked)) as client:
        config_hash = await _plan_with_go_dataset(client, app, folder)
        result = await client.call_tool("train_confirm", {"name": "ink", "config_hash": config_hash})
        gates = await client.call_tool("train_gates", {"name": "ink"})
    assert result.is_error and "did not confirm" in _text(result)
    assert gates.structured_content["gates"][1]["status"] == "open"  # type: ignore[index]


async def test_gates_show_where_the_run_stands_and_the_resource_has_the_records(
    client: Client, app: Wiring, home: Path
) -> None:
    config_hash = await _plan_with_go_dataset(client, app, placeholder_dataset(home))
    gates = await client.call_tool("train_gates", {"name": "ink"})
    assert not gates.is_error
    status = gates.structured_content
    assert status is not None and status["planned_config_hash"] == config_hash
    assert "train_confirm" in status["next_step"]
    resource = await client.read_resource("ategnatos://training/ink")
    text = resource.contents[0].text  # type: ignore[union-attr]
    assert "Gate 1 (dataset)" in text and "a LoRA of my ink drawings" in text and config_hash in text
    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert "ategnatos://training/{name}" in templates


async def test_bad_input_comes_back_as_plain_tool_errors(client: Client, home: Path, tmp_path: Path) -> None:
    placeholder_dataset(home)
    unknown = await client.call_tool("train_plan", {**PLAN_ARGS, "family": "dalle"})
    assert unknown.is_error and "dalle" in _text(unknown)
    rank = await client.call_tool("train_plan", {**PLAN_ARGS, "overrides": {"network_rank": 0}})
    assert rank.is_error and "network_rank" in _text(rank)
    outside = await client.call_tool("train_plan", {**PLAN_ARGS, "dataset_path": str(tmp_path)})
    assert outside.is_error and "outside" in _text(outside)
    trigger = await client.call_tool("train_plan", {**PLAN_ARGS, "trigger_word": "ink, style"})
    assert trigger.is_error and "trigger word" in _text(trigger)
    missing = await client.call_tool("train_gates", {"name": "nothing"})
    assert missing.is_error and "train_plan" in _text(missing)


def _real_dataset(home: Path) -> Path:
    import numpy as np
    from PIL import Image

    folder = home / "workspace" / "datasets" / "real"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(12):
        blocks = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)  # distinct pictures that compress well
        Image.fromarray(blocks).resize((1024, 1024), Image.Resampling.NEAREST).save(folder / f"art{i:02}.png")
        (folder / f"art{i:02}.txt").write_text(f"ink_style, study number {i}", encoding="utf-8")
    return folder


async def test_audit_plan_confirm_then_a_touched_image_resets_the_gates(client: Client, home: Path) -> None:
    folder = _real_dataset(home)
    audit = await client.call_tool(
        "dataset_audit", {"path": "workspace/datasets/real", "training_name": "real", "trigger_word": "ink_style"}
    )
    assert not audit.is_error, audit.content
    assert audit.structured_content["go"] is True, audit.structured_content  # type: ignore[index]
    plan = await client.call_tool(
        "train_plan", {**PLAN_ARGS, "name": "real", "dataset_path": "workspace/datasets/real"}
    )
    assert not plan.is_error, plan.content
    config_hash = plan.structured_content["config_hash"]  # type: ignore[index]
    confirmed = await client.call_tool("train_confirm", {"name": "real", "config_hash": config_hash})
    assert not confirmed.is_error, confirmed.content
    (folder / "art05.txt").write_text("ink_style, study number five, revised", encoding="utf-8")
    gates = await client.call_tool("train_gates", {"name": "real"})
    status = gates.structured_content
    assert status is not None
    assert [g["status"] for g in status["gates"]] == ["open", "open", "open", "open"]
    assert status["plan_is_stale"] and "train_plan" in status["next_step"]
    assert any("dataset changed" in n for n in status["notices"])


def _flat(home: Path, name: str, count: int) -> str:
    folder = home / "workspace" / "datasets" / name
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{name}{i}.png").write_bytes(b"fake png")
        (folder / f"{name}{i}.txt").write_text(f"{name}, picture {i}", encoding="utf-8")
    return f"workspace/datasets/{name}"


@pytest.mark.parametrize(
    ("backend", "in_its_terms", "reg_note"),
    [
        ("kohya", "num_repeats 1_reg=1, 3_sketch=3, 8_ink=8", "about twice as many steps"),
        ("simpletuner", "repeats 1_reg=0, 3_sketch=2, 8_ink=7", "marked is_regularisation_data"),
        ("ai-toolkit", "num_repeats 1_reg=1, 3_sketch=3, 8_ink=8", "marked is_reg"),
    ],
)
async def test_train_plan_on_a_dataset_structure_layout_keeps_folder_repeats_and_the_reg_folder(
    client: Client, home: Path, backend: str, in_its_terms: str, reg_note: str
) -> None:
    ink, sketch, reg = _flat(home, "ink", 10), _flat(home, "sketch", 6), _flat(home, "reg", 5)
    laid_out = await client.call_tool(
        "dataset_structure",
        {
            "path": ink,
            "name": "ink",
            "repeats": 8,
            "extra_concepts": [
                {"path": sketch, "name": "sketch", "repeats": 3},
                {"path": reg, "name": "reg", "repeats": 1},
            ],
        },
    )
    assert not laid_out.is_error, laid_out.content
    args = {**PLAN_ARGS, "dataset_path": "workspace/datasets/ink-kohya", "backend": backend, "gpu_vram_gb": 24}
    result = await client.call_tool("train_plan", {**args, "overrides": {"batch_size": 2}})
    assert not result.is_error, result.content
    plan = result.structured_content
    assert plan is not None
    assert plan["steps"]["images"] == 16 and plan["steps"]["images_per_epoch"] == 6 * 3 + 10 * 8
    assert plan["steps"]["steps_per_epoch"] == 49
    assert plan["steps"]["total_steps"] == plan["config"]["epochs"] * 49
    summary = _text(result)
    assert (
        "Each folder keeps the repeats in its name: 3_sketch 6 images x 3 + 8_ink 10 images x 8 = 98 image views "
        "per epoch; with batch 2 that is 49 steps per epoch" in summary
    )
    assert "1_reg (5 images) holds regularisation images" in summary
    assert f"In {backend}'s terms: {in_its_terms}" in summary
    assert reg_note in summary and "not used" not in summary

    overridden = await client.call_tool("train_plan", {**args, "overrides": {"repeats": 2, "batch_size": 2}})
    assert not overridden.is_error, overridden.content
    assert "The repeats you chose (2) replace the numbers in the folder names for every folder" in _text(overridden)
