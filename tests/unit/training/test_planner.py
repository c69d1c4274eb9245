"""The plan on real files: presets, card fitting, files and records written, gates reset by changes, bad input."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ategnatos_mcp.dataset import dataset_fingerprint
from ategnatos_mcp.errors import InvalidRequestError, NotFoundError, PathNotAllowedError
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import (
    PlanRequest,
    build_plan,
    confirm_plan,
    read_gates,
    record_dataset_gate,
    run_status,
)


def _dataset(home: Path, count: int = 12, name: str = "ink") -> Path:
    folder = home / "workspace" / "datasets" / name
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"img{i:02}.png").write_bytes(b"\x89PNG fake")
        (folder / f"img{i:02}.txt").write_text(f"ink_style, drawing {i}", encoding="utf-8")
    return folder


def _request(**changes: Any) -> PlanRequest:
    values: dict[str, Any] = {
        "name": "ink",
        "intent": "my ink drawings",
        "dataset_path": "workspace/datasets/ink",
        "training_type": "style",
        "family": "sdxl",
        "base_model": "/models/sdxl.safetensors",
        "trigger_word": "ink_style",
        "gpu_vram_gb": 24,
    }
    return PlanRequest(**{**values, **changes})


@pytest.fixture
def store(settings: Settings) -> GrimoireStore:
    return GrimoireStore(settings.grimoire_dir)


async def test_plan_writes_backend_files_and_records_and_explains_every_setting(
    settings: Settings, store: GrimoireStore, home: Path
) -> None:
    _dataset(home)
    plan = await build_plan(settings, store, _request())
    cfg = plan.config
    assert (cfg.image_count, cfg.repeats, cfg.epochs) == (12, 25, 10)  # 300 views per epoch, standard preset
    assert cfg.batch_size == 4 and plan.fit == "fits"
    assert plan.steps.total_steps == 10 * 75
    config_dir = home / "workspace" / "configs" / "ink"
    assert sorted(p.name for p in config_dir.iterdir()) == [
        "dryrun-ink-dataset.toml",
        "dryrun-ink.toml",
        "ink-dataset.toml",
        "ink.toml",
        "sample-prompts.txt",  # built from the captions: no sample_prompts were given
    ]
    assert cfg.sample_prompts == ["ink_style, drawing 0", "ink_style, drawing 11"]
    args = tomllib.loads((config_dir / "ink.toml").read_text(encoding="utf-8"))
    assert args["output_name"] == "ink" and args["max_train_epochs"] == 10
    assert plan.command.endswith(f"--config_file={config_dir}/ink.toml")
    records = home / "grimoire" / "training" / "ink"
    assert "my ink drawings" in (records / "intent.md").read_text(encoding="utf-8")
    config_md = (records / "config.md").read_text(encoding="utf-8")
    assert plan.config_hash in config_md and "| RTX 4090 | 24 |" in config_md
    assert {"network_rank", "learning_rate", "repeats", "epochs", "caption_extension"} <= set(plan.explanations)
    assert all(text.strip() for text in plan.explanations.values())
    state = await read_gates(store, "ink")
    assert state.planned_config_hash == plan.config_hash and state.planned_config is not None


async def test_rented_gpus_have_time_and_cost_and_small_cards_get_savers(
    settings: Settings, store: GrimoireStore, home: Path
) -> None:
    _dataset(home)
    plan = await build_plan(
        settings, store, _request(family="flux", base_model="/m/flux1-dev.safetensors", gpu_vram_gb=12)
    )
    assert plan.fit == "fits" and plan.savers_applied and plan.savers_applied[-1].startswith("block swap")
    assert plan.config.blocks_to_swap > 0 and plan.config.batch_size == 1
    rented = {g.gpu: g for g in plan.gpus if g.usd_per_hour is not None}
    hours = rented["RTX 4090"].hours
    assert hours is not None and rented["RTX 4090"].usd == pytest.approx(hours * 0.34, abs=0.01)
    assert all(g.hours and g.hours > 0 for g in rented.values() if g.fit == "fits")
    assert rented["RTX 4090"].block_swap == 0 and rented["RTX 4090"].fit == "fits"  # no need to swap on 24 GB
    local = {g.gpu: g for g in plan.gpus}
    assert local["RTX 3060 12GB"].block_swap == plan.config.blocks_to_swap


async def test_without_a_known_card_the_plan_uses_batch_one_and_lists_gpus(
    settings: Settings, store: GrimoireStore, home: Path
) -> None:
    _dataset(home)
    plan = await build_plan(settings, store, _request(gpu_vram_gb=None))
    assert plan.target_gpu_gb is None and plan.fit is None and plan.config.batch_size == 1
    assert plan.savers_applied == [] and plan.hours_on_target is None
    assert any(g.fit == "fits" for g in plan.gpus)


async def test_simpletuner_and_aitoolkit_plans_write_their_own_files(
    settings: Settings, store: GrimoireStore, home: Path
) -> None:
    _dataset(home)
    st = await build_plan(settings, store, _request(backend="simpletuner"))
    assert st.command.endswith("simpletuner train")
    assert (home / "workspace/configs/ink/simpletuner/multidatabackend.json").is_file()
    aitk = await build_plan(settings, store, _request(backend="ai-toolkit"))
    assert aitk.command == f"python run.py {home}/workspace/configs/ink/ink.yaml"


async def test_overrides_change_the_config_and_bad_ones_are_clear_errors(
    settings: Settings, store: GrimoireStore, home: Path
) -> None:
    _dataset(home)
    plan = await build_plan(settings, store, _request(overrides={"network_rank": 8, "epochs": 4}))
    assert (plan.config.network_rank, plan.config.epochs) == (8, 4)
    with pytest.raises(InvalidRequestError) as rank_zero:
        await build_plan(settings, store, _request(overrides={"network_rank": 0}))
    assert "network_rank" in rank_zero.value.message
    with pytest.raises(InvalidRequestError) as typo:
        await build_plan(settings, store, _request(overrides={"netwrk_rank": 8}))
    assert "netwrk_rank" in typo.value.message
    with pytest.raises(InvalidRequestError) as measured:
        await build_plan(settings, store, _request(overrides={"image_count": 200}))
    assert "measured from the dataset" in measured.value.message
    with pytest.raises(InvalidRequestError) as own:
        await build_plan(settings, store, _request(overrides={"family": "flux"}))
    assert "own argument" in own.value.message


async def test_bad_input_gets_plain_errors(
    settings: Settings, store: GrimoireStore, home: Path, tmp_path: Path
) -> None:
    _dataset(home)
    with pytest.raises(InvalidRequestError) as family:
        await build_plan(settings, store, _request(family="dalle"))
    assert "dalle" in family.value.message
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(PathNotAllowedError):
        await build_plan(settings, store, _request(dataset_path=str(outside)))
    with pytest.raises(InvalidRequestError) as trigger:
        await build_plan(settings, store, _request(trigger_word="ink,style"))
    assert "trigger" in trigger.value.message
    with pytest.raises(NotFoundError):
        await build_plan(settings, store, _request(dataset_path="workspace/datasets/missing"))
    empty = home / "workspace" / "datasets" / "empty"
    empty.mkdir()
    with pytest.raises(InvalidRequestError):
        await build_plan(settings, store, _request(dataset_path=str(empty)))


async def test_base_model_from_the_studio_inventory_gives_location_and_family(
    settings: Settings, store: GrimoireStore, home: Path
) -> None:
    from ategnatos_mcp.studio import STUDIO_DOCUMENT, StudioInventory
    from ategnatos_mcp.studio.models import ModelEntry

    async with store.update(STUDIO_DOCUMENT, StudioInventory) as upd:
        upd.doc.models.append(ModelEntry(name="Pony V6", base="Pony", location="/models/pony_v6.safetensors"))
    _dataset(home)
    plan = await build_plan(settings, store, _request(family=None, base_model="pony v6"))
    assert plan.config.family == "pony" and plan.config.base_model == "/models/pony_v6.safetensors"


async def _confirmed(settings: Settings, store: GrimoireStore, folder: Path) -> str:
    plan = await build_plan(settings, store, _request())
    await record_dataset_gate(
        store,
        "ink",
        dataset_path=folder,
        fingerprint=dataset_fingerprint(folder),
        go=True,
        reasons=[],
        report_markdown="# GO\n",
    )
    await confirm_plan(store, "ink", config_hash=plan.config_hash, method="explicit")
    return plan.config_hash


async def test_touching_a_dataset_image_resets_the_gates(settings: Settings, store: GrimoireStore, home: Path) -> None:
    folder = _dataset(home)
    await _confirmed(settings, store, folder)
    assert [g.status for g in (await run_status(store, "ink")).gates][:2] == ["passed", "passed"]
    image = folder / "img03.png"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    status = await run_status(store, "ink")
    assert [g.status for g in status.gates] == ["open", "open", "open", "open"]
    assert status.plan_is_stale and any("dataset changed" in n for n in status.notices)
    with pytest.raises(InvalidRequestError):
        await confirm_plan(store, "ink", config_hash=status.planned_config_hash or "", method="explicit")


async def test_a_plan_on_another_folder_than_the_audited_one_asks_for_its_audit_not_a_new_plan(
    settings: Settings, store: GrimoireStore, home: Path
) -> None:
    audited = _dataset(home)
    await record_dataset_gate(
        store,
        "ink",
        dataset_path=audited,
        fingerprint=dataset_fingerprint(audited),
        go=True,
        reasons=[],
        report_markdown="# GO\n",
    )
    kohya = _dataset(home, name="ink-kohya/6_ink")  # what dataset_structure lays out next to it
    plan = await build_plan(settings, store, _request(dataset_path="workspace/datasets/ink-kohya"))
    assert plan.gates.dataset.status == "open" and plan.gates.dataset.dataset_path == str(kohya.parent)
    assert "the plan trains on" in plan.notices[-1] and "dataset changed" not in plan.notices[-1]
    status = await run_status(store, "ink")
    assert not status.plan_is_stale  # the plan's own folder did not change: planning again would not help
    assert status.next_step == (
        "Check the dataset and fix what the report says (gate 1): "
        f"dataset_audit(path='{kohya.parent}', training_name='ink', trigger_word='ink_style')."
    )
    await record_dataset_gate(
        store,
        "ink",
        dataset_path=kohya.parent,
        fingerprint=dataset_fingerprint(kohya.parent),
        go=True,
        reasons=[],
        report_markdown="# GO\n",
    )
    confirmed = await confirm_plan(store, "ink", config_hash=plan.config_hash, method="explicit")
    assert [g.status for g in confirmed.gates][:2] == ["passed", "passed"]


async def test_editing_the_config_resets_the_confirmation(settings: Settings, store: GrimoireStore, home: Path) -> None:
    folder = _dataset(home)
    confirmed = await _confirmed(settings, store, folder)
    same = await build_plan(settings, store, _request())
    assert same.config_hash == confirmed and same.gates.confirmation.status == "passed"
    changed = await build_plan(settings, store, _request(overrides={"learning_rate": 5e-5}))
    assert changed.config_hash != confirmed
    assert changed.gates.confirmation.status == "open" and changed.gates.dataset.status == "passed"
    assert any("configuration changed" in n for n in changed.notices)


async def test_status_of_an_unknown_run_is_not_found(store: GrimoireStore) -> None:
    with pytest.raises(NotFoundError):
        await run_status(store, "nothing")
