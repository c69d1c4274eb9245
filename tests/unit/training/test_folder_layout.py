"""Kohya folder layouts: each folder keeps its own repeats, regularisation folders are regularisation data in
every backend's own terms (checked against the catalogues) and never count as training images."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import (
    PlanRequest,
    RunPaths,
    build_plan,
    is_regularisation_folder,
    render_backend,
    step_summary,
)
from ategnatos_mcp.training.backends.catalogue import (
    CatalogueError,
    aitoolkit_catalogue,
    check_aitoolkit,
    check_kohya_args,
    check_kohya_dataset,
    check_simpletuner,
    check_simpletuner_dataloader,
    kohya_catalogue,
    simpletuner_catalogue,
)
from ategnatos_mcp.training.costs import run_hours
from ategnatos_mcp.training.steps import backend_steps
from tests.support.training import FOLDERS, REPEATS, layered_config

PATHS = RunPaths(dataset_dir="/data/ink", config_dir="/cfg/ink", output_dir="/out/ink")
VIEWS = 6 * 3 + 10 * 8  # 98 training image views per epoch; the 5 reg images do not count


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("1_reg", True),
        ("reg", True),
        ("1_REG", True),
        ("2_Regularisation", True),
        ("1_regularization", True),
        ("1_class", True),
        ("1_reg_woman", False),
        ("8_ink", False),
        ("registry", False),
        ("", False),
    ],
)
def test_the_regularisation_folder_rule(folder: str, expected: bool) -> None:
    assert is_regularisation_folder(folder) is expected


def test_images_per_epoch_sum_each_training_folders_images_times_its_own_repeats() -> None:
    cfg = layered_config()
    assert cfg.training_folders == ["3_sketch", "8_ink"]
    assert cfg.samples_per_epoch == VIEWS and cfg.regularisation_images == 5
    assert cfg.steps_per_epoch == math.ceil(VIEWS / 2) == 49
    assert cfg.total_steps == 490
    steps = step_summary(cfg)
    assert steps.images_per_epoch == VIEWS and steps.repeats_from == "folders"
    assert [(f.folder, f.views_per_epoch, f.regularisation) for f in steps.folders] == [
        ("1_reg", 0, True),
        ("3_sketch", 18, False),
        ("8_ink", 80, False),
    ]
    assert steps.explanation.startswith(
        "Each folder keeps the repeats in its name: 3_sketch 6 images x 3 + 8_ink 10 images x 8 = 98 image views "
        "per epoch; with batch 2 that is 49 steps per epoch, 10 epochs = 490 steps."
    )
    assert "1_reg (5 images) holds regularisation images" in steps.explanation
    # conventions.md §1: sd-scripts repeats reg images until they match the training images (about twice the steps)
    assert "about 98 steps per epoch, about 980 steps in all" in steps.per_backend["kohya"]
    assert (backend_steps(cfg, "kohya"), backend_steps(cfg, "simpletuner"), backend_steps(cfg, "ai-toolkit")) == (
        980,
        490,
        490,
    )
    fixed = layered_config(max_train_steps=300)  # a fixed length stays fixed; about half of it is reg samples
    assert backend_steps(fixed, "kohya") == 300
    assert (
        "stays 300 steps, so about half of them are regularisation samples" in step_summary(fixed).per_backend["kohya"]
    )
    assert "num_repeats 1_reg=1, 3_sketch=3, 8_ink=8" in steps.per_backend["kohya"]
    assert "repeats 1_reg=0, 3_sketch=2, 8_ink=7" in steps.per_backend["simpletuner"]
    assert "no figure" in steps.per_backend["simpletuner"]
    assert "steps=490" in steps.per_backend["ai-toolkit"]


def test_bad_folder_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="not among image_folders"):
        layered_config(reg_folders=["1_nope"])
    with pytest.raises(ValueError, match="image_count 20 differs"):
        layered_config(image_count=20)
    with pytest.raises(ValueError, match="no training images"):
        layered_config(image_folders=["1_reg"], folder_images={"1_reg": 5}, folder_repeats={"1_reg": 1})
    with pytest.raises(ValueError, match="folder_images must count"):
        layered_config(folder_images={})


def test_a_flat_config_keeps_the_hash_it_had_before_folder_settings_existed() -> None:
    import hashlib

    flat = layered_config(
        image_folders=[""], folder_images={}, folder_repeats={}, reg_folders=[], image_count=16, repeats=6
    )
    old = flat.model_dump(mode="json")
    for key in ("folder_images", "folder_repeats", "reg_folders"):
        del old[key]
    expected = hashlib.sha256(json.dumps(old, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert flat.config_hash == expected
    assert layered_config().config_hash != expected  # folder settings are part of what the artist confirms


def test_kohya_subsets_keep_their_repeats_and_mark_the_reg_folder() -> None:
    cfg = layered_config()
    rendered = render_backend(cfg, "kohya", PATHS)
    args = tomllib.loads(rendered.files["ink.toml"])
    dataset = tomllib.loads(rendered.files["ink-dataset.toml"])
    check_kohya_args(args, "sdxl_train_network.py")
    check_kohya_dataset(dataset)
    spec = {k["key"]: k for k in kohya_catalogue()["dataset_config"]["keys"]}["is_reg"]
    assert spec["allowed_at"] == ["datasets.subsets"] and spec["type"] == "bool"
    subsets = {s["image_dir"].rsplit("/", 1)[1]: s for s in dataset["datasets"][0]["subsets"]}
    assert {name: s["num_repeats"] for name, s in subsets.items()} == REPEATS
    assert subsets["1_reg"]["is_reg"] is True and "class_tokens" not in subsets["1_reg"]
    assert all("is_reg" not in subsets[f] and subsets[f]["class_tokens"] == "ink_style" for f in ("3_sketch", "8_ink"))
    # sd-scripts' own arithmetic over the training subsets (reg pairing aside) gives the plan's steps
    batch = dataset["datasets"][0]["batch_size"]
    train_views = sum(FOLDERS[n] * s["num_repeats"] for n, s in subsets.items() if not s.get("is_reg"))
    assert args["max_train_epochs"] * math.ceil(train_views / batch) == cfg.total_steps == 490
    assert not any("not used" in n for n in rendered.notes)
    assert any("1_reg x1, 3_sketch x3, 8_ink x8" in n for n in rendered.notes)
    assert any("about twice as many steps" in n for n in rendered.notes)
    with pytest.raises(CatalogueError):  # is_reg belongs to a subset, not to the dataset
        check_kohya_dataset({"datasets": [{"is_reg": True, "subsets": []}]})


def test_simpletuner_backends_keep_their_repeats_and_mark_the_reg_folder() -> None:
    cfg = layered_config()
    rendered = render_backend(cfg, "simpletuner", PATHS)
    config = json.loads(rendered.files["simpletuner/config.json"])
    dataloader = json.loads(rendered.files["simpletuner/multidatabackend.json"])
    check_simpletuner(config)
    check_simpletuner_dataloader(dataloader)
    assert "is_regularisation_data" in {k["key"] for k in simpletuner_catalogue()["dataloader"]["keys"]}
    images = [b for b in dataloader if b["dataset_type"] == "image"]
    by_folder = {b["instance_data_dir"].rsplit("/", 1)[1]: b for b in images}
    assert {f: b["repeats"] for f, b in by_folder.items()} == {f: r - 1 for f, r in REPEATS.items()}
    assert by_folder["1_reg"]["is_regularisation_data"] is True
    assert not any("is_regularisation_data" in by_folder[f] for f in ("3_sketch", "8_ink"))
    # SimpleTuner's own arithmetic over the training backends: images x (repeats + 1)
    train_views = sum(FOLDERS[f] * (b["repeats"] + 1) for f, b in by_folder.items() if f != "1_reg")
    assert config["num_train_epochs"] * math.ceil(train_views / config["train_batch_size"]) == cfg.total_steps
    assert config["checkpoint_step_interval"] == cfg.steps_per_epoch * cfg.save_every_epochs
    notes = " ".join(rendered.notes)
    assert "1_reg 1 -> 0, 3_sketch 3 -> 2, 8_ink 8 -> 7" in notes and "is_regularisation_data" in notes


def test_simpletuner_warns_when_the_reg_set_outweighs_the_artists_images() -> None:
    heavy = layered_config(folder_repeats={**REPEATS, "1_reg": 40})  # 5 x 40 = 200 reg views against 98
    note = next(n for n in render_backend(heavy, "simpletuner", PATHS).notes if "1_reg:" in n)
    assert "200 image views per epoch against 98 of yours" in note
    light = next(n for n in render_backend(layered_config(), "simpletuner", PATHS).notes if "1_reg:" in n)
    assert "outweigh" not in light


def test_aitoolkit_datasets_keep_their_balance_and_mark_the_reg_folder() -> None:
    cfg = layered_config()
    rendered = render_backend(cfg, "ai-toolkit", PATHS)
    job = yaml.safe_load(rendered.files["ink.yaml"])
    check_aitoolkit({k: v for k, v in job.items() if k != "meta"})
    option = {o["path"]: o for o in aitoolkit_catalogue()["options"]}["config.process[].datasets[].is_reg"]
    assert option["type"] == "bool"
    process = job["config"]["process"][0]
    datasets = {d["folder_path"].rsplit("/", 1)[1]: d for d in process["datasets"]}
    assert {f: d["num_repeats"] for f, d in datasets.items()} == REPEATS
    assert datasets["1_reg"]["is_reg"] is True
    assert not any("is_reg" in datasets[f] for f in ("3_sketch", "8_ink"))
    assert process["train"]["steps"] == cfg.total_steps == 490  # training images only
    assert any("1_reg: regularisation images, marked is_reg" in n for n in rendered.notes)


def test_a_flat_dataset_renders_as_before() -> None:
    flat = layered_config(
        image_folders=[""], folder_images={}, folder_repeats={}, reg_folders=[], image_count=16, repeats=6
    )
    assert flat.samples_per_epoch == 96
    job = yaml.safe_load(render_backend(flat, "ai-toolkit", PATHS).files["ink.yaml"])
    assert job["config"]["process"][0]["datasets"][0]["num_repeats"] == 1
    assert "is_reg" not in job["config"]["process"][0]["datasets"][0]
    dataset = tomllib.loads(render_backend(flat, "kohya", PATHS).files["ink-dataset.toml"])
    assert dataset["datasets"][0]["subsets"] == [
        {"image_dir": "/data/ink", "num_repeats": 6, "class_tokens": "ink_style"}
    ]


# The planner on real folders ---------------------------------------------------------------------------
def _layout(home: Path, folders: dict[str, int], name: str = "ink-kohya") -> Path:
    root = home / "workspace" / "datasets" / name
    for folder, count in folders.items():
        (root / folder).mkdir(parents=True)
        for i in range(count):
            (root / folder / f"img{i:02}.png").write_bytes(b"\x89PNG fake")
            (root / folder / f"img{i:02}.txt").write_text(f"ink_style, drawing {i}", encoding="utf-8")
    return root


def _request(**changes: Any) -> PlanRequest:
    values: dict[str, Any] = {
        "name": "ink",
        "dataset_path": "workspace/datasets/ink-kohya",
        "training_type": "style",
        "family": "sdxl",
        "base_model": "/models/sdxl.safetensors",
        "trigger_word": "ink_style",
        "gpu_vram_gb": 24,
    }
    return PlanRequest(**{**values, **changes})


async def test_the_plan_uses_each_folders_repeats_and_keeps_reg_images_out_of_the_count(
    settings: Settings, home: Path
) -> None:
    _layout(home, FOLDERS)
    plan = await build_plan(settings, GrimoireStore(settings.grimoire_dir), _request(overrides={"batch_size": 2}))
    cfg = plan.config
    assert cfg.image_count == 16 and cfg.folder_repeats == REPEATS and cfg.reg_folders == ["1_reg"]
    assert cfg.folder_images == FOLDERS
    assert plan.steps.images_per_epoch == VIEWS and plan.steps.regularisation_images == 5
    assert plan.steps.total_steps == cfg.epochs * 49
    assert "3_sketch x3, 8_ink x8" in plan.explanations["repeats"] and "98 views" in plan.explanations["repeats"]
    assert "regularisation" in plan.explanations["reg_folders"]
    assert not any("not used" in n for n in plan.notes)
    written = tomllib.loads((home / "workspace" / "configs" / "ink" / "ink-dataset.toml").read_text(encoding="utf-8"))
    assert [s.get("is_reg", False) for s in written["datasets"][0]["subsets"]] == [True, False, False]
    config_md = (home / "grimoire" / "training" / "ink" / "config.md").read_text(encoding="utf-8")
    assert "Each folder keeps the repeats in its name" in config_md
    # sd-scripts runs about twice the steps with reg images: its time estimate counts them
    assert plan.hours_on_target == run_hours(cfg, 1.0, steps=2 * plan.steps.total_steps) > run_hours(cfg, 1.0)
    other = await build_plan(
        settings, GrimoireStore(settings.grimoire_dir), _request(backend="ai-toolkit", overrides={"batch_size": 2})
    )
    assert other.hours_on_target == run_hours(other.config, 1.0)


async def test_an_explicit_repeats_override_wins_for_every_folder(settings: Settings, home: Path) -> None:
    _layout(home, FOLDERS)
    plan = await build_plan(
        settings, GrimoireStore(settings.grimoire_dir), _request(overrides={"repeats": 4, "batch_size": 1})
    )
    cfg = plan.config
    assert cfg.folder_repeats == {} and cfg.reg_folders == ["1_reg"]
    assert plan.steps.images_per_epoch == 16 * 4 and plan.steps.repeats_from == "plan"
    assert "The repeats you chose (4) replace the numbers in the folder names for every folder" in (
        plan.steps.explanation
    )
    assert any("(4) replace the numbers in the folder names" in n for n in plan.notes)


async def test_a_mixed_layout_gives_plain_folders_the_plans_repeats(settings: Settings, home: Path) -> None:
    _layout(home, {"5_ink": 4, "extra": 6})
    plan = await build_plan(settings, GrimoireStore(settings.grimoire_dir), _request())
    cfg = plan.config
    assert cfg.folder_repeats == {"5_ink": 5} and cfg.reg_folders == []
    assert plan.steps.images_per_epoch == 4 * 5 + 6 * cfg.repeats


async def test_a_dataset_of_only_regularisation_images_is_refused(settings: Settings, home: Path) -> None:
    _layout(home, {"1_reg": 5})
    with pytest.raises(InvalidRequestError, match="only regularisation images") as caught:
        await build_plan(settings, GrimoireStore(settings.grimoire_dir), _request())
    assert "dataset_structure" in (caught.value.hint or "")


async def test_folder_settings_cannot_be_overridden(settings: Settings, home: Path) -> None:
    _layout(home, FOLDERS)
    with pytest.raises(InvalidRequestError, match="measured from the dataset"):
        await build_plan(settings, GrimoireStore(settings.grimoire_dir), _request(overrides={"reg_folders": ["8_ink"]}))
