"""Backend adapters: for each backend, preset and family the files parse, every key is in that backend's
catalogue, the step arithmetic matches conventions.md and the launch command is exactly the documented one."""

from __future__ import annotations

import json
import math
import tomllib
from typing import Any

import pytest
import yaml
from inline_snapshot import snapshot

from ategnatos_mcp.training import BACKENDS, RunPaths, TrainingConfig, render_backend, resolve_family
from ategnatos_mcp.training.backends.catalogue import (
    CatalogueError,
    check_aitoolkit,
    check_kohya_args,
    check_kohya_dataset,
    check_simpletuner,
    check_simpletuner_dataloader,
)
from ategnatos_mcp.training.presets import PRESET_LEVELS, build_preset

PATHS = RunPaths(dataset_dir="/data/ink", config_dir="/cfg/ink", output_dir="/out/ink")
FAMILIES = ("sd15", "sdxl", "pony", "illustrious", "flux1", "sd35")


def _config(family: str, level: str = "standard", training_type: str = "character", **changes: Any) -> TrainingConfig:
    fam = resolve_family(family)
    values = build_preset(level, training_type, fam, 23, has_trigger=True)
    values.update(
        name="ink",
        family=family,
        base_model="/models/base.safetensors",
        dataset_path="/data/ink",
        image_count=23,
        trigger_word="ink_style",
        sample_prompts=["ink_style, a lighthouse at dusk"],
    )
    values.update(changes)
    return TrainingConfig(**values)


def _expected_steps(cfg: TrainingConfig) -> int:
    # conventions.md: steps = E x ceil(N x R / B) / (A x G), G = 1
    return cfg.epochs * math.ceil(math.ceil(cfg.image_count * cfg.repeats / cfg.batch_size) / cfg.gradient_accumulation)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("level", PRESET_LEVELS)
def test_kohya_files_parse_pass_the_catalogue_and_keep_repeats_and_epochs(family: str, level: str) -> None:
    cfg = _config(family, level, batch_size=2)
    rendered = render_backend(cfg, "kohya", PATHS)
    args = tomllib.loads(rendered.files["ink.toml"])
    dataset = tomllib.loads(rendered.files["ink-dataset.toml"])
    script = resolve_family(family).kohya.script
    check_kohya_args(args, script)
    check_kohya_dataset(dataset)
    subset = dataset["datasets"][0]["subsets"][0]
    assert subset["num_repeats"] == cfg.repeats
    assert args["max_train_epochs"] == cfg.epochs and "max_train_steps" not in args
    steps = args["max_train_epochs"] * math.ceil(subset["num_repeats"] * 23 / dataset["datasets"][0]["batch_size"])
    assert steps == _expected_steps(cfg) == cfg.total_steps
    # defaults that would silently ruin a run are always explicit
    assert dataset["general"]["caption_extension"] == ".txt"
    assert args["learning_rate"] == cfg.learning_rate and args["network_dim"] == cfg.network_rank
    assert args["mixed_precision"] == "bf16"
    # a real run saves its state beside each saved epoch, so an interrupted run can --resume (not restart at 0)
    assert args["save_state"] is True and args["save_last_n_epochs_state"] == 1
    assert rendered.command == [
        "accelerate",
        "launch",
        "--num_cpu_threads_per_process",
        "1",
        script,
        "--config_file=/cfg/ink/ink.toml",
    ]
    assert args["dataset_config"] == "/cfg/ink/ink-dataset.toml"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("level", PRESET_LEVELS)
def test_simpletuner_files_parse_pass_the_catalogue_and_convert_repeats(family: str, level: str) -> None:
    cfg = _config(family, level)
    rendered = render_backend(cfg, "simpletuner", PATHS)
    config = json.loads(rendered.files["simpletuner/config.json"])
    dataloader = json.loads(rendered.files["simpletuner/multidatabackend.json"])
    check_simpletuner(config)
    check_simpletuner_dataloader(dataloader)
    assert dataloader[0]["repeats"] == cfg.repeats - 1  # SimpleTuner counts extra passes
    assert (config["num_train_epochs"], config["max_train_steps"]) == (cfg.epochs, 0)
    assert config["model_type"] == "lora" and config["learning_rate"] == cfg.learning_rate
    assert config["train_batch_size"] == cfg.batch_size
    assert config["data_backend_config"] == "/cfg/ink/simpletuner/multidatabackend.json"
    assert rendered.command == ["simpletuner", "train"]
    assert rendered.workdir == "/cfg/ink/simpletuner"
    assert rendered.command_line == "cd /cfg/ink/simpletuner && simpletuner train"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("level", PRESET_LEVELS)
def test_aitoolkit_yaml_parses_with_numbers_as_numbers_and_counts_steps(family: str, level: str) -> None:
    cfg = _config(family, level, batch_size=3, gradient_accumulation=2)
    rendered = render_backend(cfg, "ai-toolkit", PATHS)
    job = yaml.safe_load(rendered.files["ink.yaml"])  # a plain YAML 1.1 loader, not ai-toolkit's patched one
    check_aitoolkit({k: v for k, v in job.items() if k != "meta"})
    process = job["config"]["process"][0]
    train = process["train"]
    assert isinstance(train["lr"], float) and train["lr"] == cfg.learning_rate
    assert isinstance(process["datasets"][0]["caption_dropout_rate"], float)
    assert train["steps"] == _expected_steps(cfg) == cfg.total_steps
    assert process["datasets"][0]["num_repeats"] == 1
    assert process["datasets"][0]["caption_ext"] == "txt"
    assert rendered.command == ["python", "run.py", "/cfg/ink/ink.yaml"]


def test_small_learning_rates_stay_floats_in_yaml() -> None:
    rendered = render_backend(_config("sd15", learning_rate=1e-5, text_encoder_lr=5e-6), "ai-toolkit", PATHS)
    assert "lr: 1.0e-05" in rendered.files["ink.yaml"]
    train = yaml.safe_load(rendered.files["ink.yaml"])["config"]["process"][0]["train"]
    assert train["lr"] == 1e-5 and train["text_encoder_lr"] == 5e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_dry_run_variants_run_a_few_steps_without_sampling_and_save_once(backend: str) -> None:
    rendered = render_backend(_config("flux1"), backend, PATHS, dry_run=True)  # type: ignore[arg-type]
    assert rendered.dry_run
    if backend == "kohya":
        args = tomllib.loads(rendered.files["dryrun-ink.toml"])
        assert args["max_train_steps"] == 3 and "max_train_epochs" not in args
        assert "sample_prompts" not in args and "save_every_n_epochs" not in args and "save_state" not in args
        assert args["output_name"] == "ink-dryrun"
        assert rendered.command[-1] == "--config_file=/cfg/ink/dryrun-ink.toml"
    elif backend == "simpletuner":
        config = json.loads(rendered.files["dryrun-simpletuner/config.json"])
        assert (config["max_train_steps"], config["num_train_epochs"]) == (3, 0)
        assert config["validation_disable"] is True and config["checkpoint_step_interval"] == 3
        assert config["output_dir"] == "/out/ink/dryrun"
    else:
        train = yaml.safe_load(rendered.files["dryrun-ink.yaml"])["config"]["process"][0]
        assert train["train"]["steps"] == 3 and train["train"]["disable_sampling"] is True
        assert train["save"]["save_every"] == 3 and "sample" not in train


def test_kohya_sdxl_config_is_rendered_exactly() -> None:
    rendered = render_backend(_config("sdxl", "standard"), "kohya", PATHS)
    assert rendered.files["ink.toml"] == snapshot("""\
pretrained_model_name_or_path = "/models/base.safetensors"
dataset_config = "/cfg/ink/ink-dataset.toml"
output_dir = "/out/ink"
output_name = "ink"
save_model_as = "safetensors"
network_module = "networks.lora"
network_dim = 32
network_alpha = 16.0
optimizer_type = "AdamW8bit"
learning_rate = 0.0001
lr_scheduler = "constant"
lr_warmup_steps = 0
gradient_accumulation_steps = 1
mixed_precision = "bf16"
save_precision = "bf16"
gradient_checkpointing = true
cache_latents = true
cache_latents_to_disk = true
sdpa = true
seed = 42
console_log_simple = true
network_train_unet_only = true
cache_text_encoder_outputs = true
cache_text_encoder_outputs_to_disk = true
no_half_vae = true
max_train_epochs = 10
save_every_n_epochs = 1
save_state = true
save_last_n_epochs_state = 1
sample_prompts = "/cfg/ink/sample-prompts.txt"
sample_every_n_epochs = 1
sample_sampler = "euler_a"
""")
    assert rendered.files["ink-dataset.toml"] == snapshot("""\
[general]
caption_extension = ".txt"
shuffle_caption = false
keep_tokens = 0
caption_dropout_rate = 0.05
enable_bucket = true
min_bucket_reso = 256
max_bucket_reso = 2048
bucket_reso_steps = 64
bucket_no_upscale = true

[[datasets]]
resolution = 1024
batch_size = 1
subsets = [
    { image_dir = "/data/ink", num_repeats = 13, class_tokens = "ink_style" },
]
""")


def test_settings_a_backend_cannot_express_are_named() -> None:
    sd15 = _config("sd15", text_encoder_lr=5e-5)
    notes = " ".join(render_backend(sd15, "simpletuner", PATHS).notes)
    assert "text encoder is not trained" in notes
    flux = _config("flux1", blocks_to_swap=12, base_precision="nf4")
    assert any("fp8" in n for n in render_backend(flux, "kohya", PATHS).notes)
    assert any("layer" in n for n in render_backend(flux, "ai-toolkit", PATHS).notes)


def test_kohya_layout_folders_without_own_repeats_use_the_plans_repeats_and_say_so() -> None:
    # No folder_repeats: the artist overrode `repeats`, which wins for every folder (test_folder_layout.py
    # covers folders keeping their own repeats).
    cfg = _config("sdxl", image_folders=["10_ink", "5_sketch"])
    dataset = tomllib.loads(render_backend(cfg, "kohya", PATHS).files["ink-dataset.toml"])
    assert [s["image_dir"] for s in dataset["datasets"][0]["subsets"]] == ["/data/ink/10_ink", "/data/ink/5_sketch"]
    assert all(s["num_repeats"] == cfg.repeats for s in dataset["datasets"][0]["subsets"])
    notes = render_backend(cfg, "kohya", PATHS).notes
    assert any(
        f"repeats chosen for this plan ({cfg.repeats}) replace the numbers in the folder names" in n for n in notes
    )
    assert not any("not used" in n for n in notes)


def test_catalogue_checks_reject_unknown_keys_wrong_types_and_bad_choices() -> None:
    with pytest.raises(CatalogueError):
        check_kohya_args({"bogus_key": 1}, "train_network.py")
    with pytest.raises(CatalogueError):
        check_kohya_args({"network_dim": "32"}, "train_network.py")
    with pytest.raises(CatalogueError):
        check_kohya_args({"mixed_precision": "fp64"}, "train_network.py")
    with pytest.raises(CatalogueError):
        check_kohya_args({"blocks_to_swap": 4}, "sdxl_train_network.py")  # FLUX/SD3 only
    with pytest.raises(CatalogueError):
        check_kohya_dataset({"datasets": [{"image_dir": "/x"}]})  # subset-level key at dataset level
    with pytest.raises(CatalogueError):
        check_simpletuner({"text_encoder_lr": 5e-5})  # an int option in SimpleTuner's registry
    with pytest.raises(CatalogueError):
        check_simpletuner({"lora_rank": 512})
    with pytest.raises(CatalogueError):
        check_simpletuner_dataloader([{"id": "x", "bogus": 1}])
    with pytest.raises(CatalogueError):
        check_aitoolkit(
            {"job": "extension", "config": {"name": "x", "process": [{"type": "sd_trainer", "train": {"lrr": 1.0}}]}}
        )
    with pytest.raises(CatalogueError):
        check_aitoolkit(
            {
                "job": "extension",
                "config": {"name": "x", "process": [{"type": "sd_trainer", "model": {"arch": "dalle"}}]},
            }
        )
