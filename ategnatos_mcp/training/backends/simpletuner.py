"""SimpleTuner: ``config.json`` (flat option -> value) plus ``multidatabackend.json``, run with
``simpletuner train`` from the folder that holds them.

Repeats convert as conventions.md says: SimpleTuner ``repeats`` counts *extra* passes, so R becomes R - 1
(per folder, each kohya folder with its own R). Regularisation folders are data backends with
``is_regularisation_data`` (the catalogue lists both spellings; each falls back to the other).
Defaults that would silently ruin a LoRA run are written explicitly: ``model_type`` (default ``full``),
``learning_rate`` (4e-7), ``train_batch_size`` (4), ``optimizer`` (adamw_bf16).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from ategnatos_mcp.training.backends.catalogue import check_simpletuner, check_simpletuner_dataloader
from ategnatos_mcp.training.config import TrainingConfig
from ategnatos_mcp.training.models import DRY_RUN_STEPS, RenderedBackend, RunPaths

__all__ = ["render_simpletuner"]

_OPTIMIZER = {
    "adamw8bit": "bnb-adamw8bit",
    "prodigy": "prodigy",
    "lion": "bnb-lion8bit",
    "adafactor": "torch-adafactor",
}
_PRECISION = {"bf16": "no_change", "fp8": "int8-quanto", "int8": "int8-quanto", "nf4": "nf4-bnb"}


def _config(
    cfg: TrainingConfig, paths: RunPaths, *, dry_run: bool, dry_run_steps: int = DRY_RUN_STEPS, dataloader_file: str
) -> dict[str, Any]:
    fam = cfg.family_info
    out = f"{paths.output_dir}{'/dryrun' if dry_run else ''}"
    config: dict[str, Any] = {
        "model_type": "lora",
        "model_family": fam.simpletuner.model_family,
        "model_flavour": fam.simpletuner.model_flavour,
        "pretrained_model_name_or_path": cfg.base_model,
        "output_dir": out,
        "data_backend_config": f"{paths.config_dir}/{dataloader_file}",
        "lora_type": "standard",
        "lora_rank": cfg.network_rank,
        "lora_alpha": cfg.network_alpha,
        "optimizer": _OPTIMIZER[cfg.optimizer],
        "learning_rate": cfg.learning_rate,
        "lr_scheduler": cfg.lr_scheduler,
        "lr_warmup_steps": cfg.lr_warmup_steps,
        "train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation,
        "mixed_precision": cfg.mixed_precision,
        "base_model_precision": _PRECISION[cfg.base_precision],
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "resolution": cfg.resolution,
        "resolution_type": "pixel_area",
        "caption_dropout_probability": cfg.caption_dropout,
        "seed": cfg.seed,
        "report_to": "none",
    }
    if dry_run:
        config.update(
            max_train_steps=dry_run_steps,
            num_train_epochs=0,
            checkpoint_step_interval=dry_run_steps,
            checkpoints_total_limit=1,
            validation_disable=True,
        )
        return config
    if cfg.max_train_steps:
        config.update(max_train_steps=cfg.max_train_steps, num_train_epochs=0)
    else:
        config.update(num_train_epochs=cfg.epochs, max_train_steps=0)
    save_every = cfg.steps_per_epoch * cfg.save_every_epochs
    config["checkpoint_step_interval"] = save_every
    config["checkpoints_total_limit"] = max(1, -(-cfg.total_steps // save_every))
    if cfg.sample_prompts and cfg.sample_every_epochs:
        config["validation_prompt"] = cfg.sample_prompts[0]
        config["validation_step_interval"] = cfg.steps_per_epoch * cfg.sample_every_epochs
        config["validation_resolution"] = str(cfg.resolution)
        config["validation_seed"] = cfg.seed
    else:
        config["validation_disable"] = True
    return config


def _dataloader(cfg: TrainingConfig, paths: RunPaths) -> list[dict[str, Any]]:
    backends: list[dict[str, Any]] = [
        {
            **({"is_regularisation_data": True} if folder in cfg.reg_folders else {}),
            "id": f"{cfg.name}-{index}" if folder else cfg.name,
            "type": "local",
            "dataset_type": "image",
            "instance_data_dir": f"{paths.dataset_dir}/{folder}".rstrip("/"),
            "caption_strategy": "textfile",
            "resolution": cfg.resolution,
            "resolution_type": "pixel_area",
            "minimum_image_size": cfg.min_bucket_reso,
            "repeats": cfg.repeats_of(folder) - 1,
            "crop": False,
            "cache_dir_vae": f"{paths.output_dir}/cache/vae/{index}",
        }
        for index, folder in enumerate(cfg.image_folders)
    ]
    backends.append(
        {
            "id": "text-embeds",
            "type": "local",
            "dataset_type": "text_embeds",
            "default": True,
            "cache_dir": f"{paths.output_dir}/cache/text",
        }
    )
    return backends


def _repeats_note(cfg: TrainingConfig) -> str:
    if not cfg.folder_repeats:
        return f"SimpleTuner counts repeats as extra passes: {cfg.repeats} repeats are written as {cfg.repeats - 1}."
    listed = ", ".join(f"{f} {cfg.repeats_of(f)} -> {cfg.repeats_of(f) - 1}" for f in cfg.image_folders)
    return f"SimpleTuner counts repeats as extra passes, so each folder's repeats are written one lower ({listed})."


def _reg_note(cfg: TrainingConfig) -> str:
    note = (
        f"{', '.join(cfg.reg_folders)}: regularisation images, marked is_regularisation_data. SimpleTuner samples "
        "them as a data source beside your images; the reference data does not say how much longer that makes "
        "an epoch, so the step count covers your images only."
    )
    reg_views = sum(cfg.folder_images[f] * cfg.repeats_of(f) for f in cfg.reg_folders)
    if reg_views > cfg.samples_per_epoch:
        # conventions.md (documentation/DREAMBOOTH.md): raise the subject's repeats so it outweighs the reg set.
        note += (
            f" They give {reg_views} image views per epoch against {cfg.samples_per_epoch} of yours: SimpleTuner's "
            "guide says to raise your folders' repeats so your images outweigh the regularisation set."
        )
    return note


def render_simpletuner(
    cfg: TrainingConfig, paths: RunPaths, *, dry_run: bool = False, dry_run_steps: int = DRY_RUN_STEPS
) -> RenderedBackend:
    """SimpleTuner's config.json, multidatabackend.json and launch command (checked against the catalogue)."""
    prefix = "dryrun-" if dry_run else ""
    dataloader_file = f"{prefix}simpletuner/multidatabackend.json"
    config = _config(cfg, paths, dry_run=dry_run, dry_run_steps=dry_run_steps, dataloader_file=dataloader_file)
    dataloader = _dataloader(cfg, paths)
    check_simpletuner(config)
    check_simpletuner_dataloader(dataloader)
    folder = f"{paths.config_dir}/{prefix}simpletuner"
    files = {
        f"{prefix}simpletuner/config.json": json.dumps(config, indent=2) + "\n",
        dataloader_file: json.dumps(dataloader, indent=2) + "\n",
    }
    command = ["simpletuner", "train"]
    notes = [
        "SimpleTuner reads captions from the .txt file beside each image and uses them as written"
        + (": make sure they contain the trigger word." if cfg.trigger_word else "."),
        _repeats_note(cfg),
    ]
    if cfg.reg_folders:
        notes.append(_reg_note(cfg))
    if cfg.trains_text_encoder:
        notes.append(
            "SimpleTuner's text-encoder learning rate is a whole number in its option list, so the text "
            "encoder is not trained here (the LoRA trains the image model only)."
        )
    if cfg.batch_size * cfg.gradient_accumulation > 1:
        notes.append(
            f"SimpleTuner skips any image-shape bucket holding fewer than {cfg.batch_size * cfg.gradient_accumulation} "
            "images after repeats; if it reports 'No images were discovered', lower the batch size."
        )
    if cfg.base_precision == "fp8":
        notes.append("SimpleTuner loads the base model in 8 bits as int8-quanto, its recommended 8-bit mode.")
    if cfg.caption_extension != ".txt":
        notes.append("SimpleTuner's textfile captions are .txt files; .caption files are not read.")
    if cfg.shuffle_captions or cfg.keep_tokens:
        notes.append("SimpleTuner has no caption shuffling with pinned tokens; captions are used in order.")
    if len(cfg.sample_prompts) > 1:
        notes.append("SimpleTuner takes one validation prompt here; only the first sample prompt is used.")
    if cfg.blocks_to_swap:
        notes.append("SimpleTuner cannot swap a set number of blocks; use enable_group_offload instead if needed.")
    return RenderedBackend(
        backend="simpletuner",
        dry_run=dry_run,
        files=files,
        command=command,
        command_line=f"cd {shlex.quote(folder)} && simpletuner train",
        workdir=folder,
        notes=notes,
    )
