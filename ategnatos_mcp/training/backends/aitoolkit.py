"""ai-toolkit: one job YAML (``job: extension``, process ``sd_trainer``), launched with ``python run.py``.

ai-toolkit counts steps only: ``train.steps`` = the standard config's total steps and ``num_repeats`` stays 1
(conventions.md) -- except when kohya folders carry their own repeats: ``num_repeats`` "simply duplicates the
file list", so each folder's repeats are written there to keep the folders' balance (the length is still
``train.steps``). Regularisation folders are datasets with ``is_reg: true`` (a DatasetConfig key of the
catalogue). ``train.lr`` defaults to 1e-6, so it is always written. Floats are written by PyYAML, whose
representer always includes a '.' (``0.0001``, ``1.0e-05``), so every YAML 1.1 loader reads them as numbers.
"""

from __future__ import annotations

import shlex
from typing import Any

from ategnatos_mcp.training.backends.catalogue import check_aitoolkit
from ategnatos_mcp.training.config import TrainingConfig
from ategnatos_mcp.training.models import DRY_RUN_STEPS, RenderedBackend, RunPaths

__all__ = ["render_aitoolkit"]

_OPTIMIZER = {"adamw8bit": "adamw8bit", "prodigy": "prodigy", "lion": "lion", "adafactor": "adafactor"}
_QUANTIZE = {"bf16": None, "fp8": "qfloat8", "int8": "qint8", "nf4": "qint4"}


def _process(cfg: TrainingConfig, paths: RunPaths, *, dry_run: bool, dry_run_steps: int) -> dict[str, Any]:
    fam = cfg.family_info
    steps = dry_run_steps if dry_run else cfg.total_steps
    save_every = steps if dry_run else cfg.steps_per_epoch * cfg.save_every_epochs
    train: dict[str, Any] = {
        "batch_size": cfg.batch_size,
        "steps": steps,
        "gradient_accumulation_steps": cfg.gradient_accumulation,
        "train_unet": True,
        "train_text_encoder": cfg.trains_text_encoder,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "noise_scheduler": fam.ai_toolkit.noise_scheduler,
        "optimizer": _OPTIMIZER[cfg.optimizer],
        "lr": cfg.learning_rate,
        "lr_scheduler": cfg.lr_scheduler,
        "dtype": cfg.mixed_precision,
    }
    if cfg.trains_text_encoder:
        train["text_encoder_lr"] = cfg.text_encoder_lr
    if cfg.optimizer == "prodigy":
        train["optimizer_params"] = {
            "decouple": True,
            "use_bias_correction": False,
            "betas": [0.9, 0.99],
            "weight_decay": 0.05,
        }
    sampling = bool(cfg.sample_prompts and cfg.sample_every_epochs) and not dry_run
    if not sampling:
        train["disable_sampling"] = True
    if dry_run:
        train["skip_first_sample"] = True
    model: dict[str, Any] = {"name_or_path": cfg.base_model, "arch": fam.ai_toolkit.arch}
    qtype = _QUANTIZE[cfg.base_precision]
    if qtype:
        model["quantize"] = True
        model["qtype"] = qtype
    if cfg.blocks_to_swap:
        model["layer_offloading"] = True
    datasets = [
        {
            "folder_path": f"{paths.dataset_dir}/{folder}".rstrip("/"),
            "caption_ext": cfg.caption_extension.lstrip("."),
            "caption_dropout_rate": cfg.caption_dropout,
            "shuffle_tokens": cfg.shuffle_captions,
            "keep_tokens": cfg.keep_tokens,
            "cache_latents_to_disk": cfg.cache_latents,
            "resolution": [cfg.resolution],
            "num_repeats": cfg.repeats_of(folder) if cfg.folder_repeats else 1,
            **({"is_reg": True} if folder in cfg.reg_folders else {}),
        }
        for folder in cfg.image_folders
    ]
    process: dict[str, Any] = {
        "type": "sd_trainer",
        "training_folder": f"{paths.output_dir}{'/dryrun' if dry_run else ''}",
        "training_seed": cfg.seed,
        "network": {"type": "lora", "linear": cfg.network_rank, "linear_alpha": cfg.network_alpha},
        "save": {
            "dtype": "float16" if cfg.mixed_precision == "fp16" else "bf16",
            "save_every": save_every,
            "max_step_saves_to_keep": max(1, -(-steps // save_every)),
        },
        "datasets": datasets,
        "train": train,
        "model": model,
    }
    if cfg.trigger_word:
        process["trigger_word"] = cfg.trigger_word
    if sampling:
        process["sample"] = {
            "sampler": fam.ai_toolkit.sampler,
            "sample_every": cfg.steps_per_epoch * cfg.sample_every_epochs,
            "width": cfg.resolution,
            "height": cfg.resolution,
            "prompts": list(cfg.sample_prompts),
            "seed": cfg.seed,
            "walk_seed": True,
        }
    return process


def render_aitoolkit(
    cfg: TrainingConfig, paths: RunPaths, *, dry_run: bool = False, dry_run_steps: int = DRY_RUN_STEPS
) -> RenderedBackend:
    """The ai-toolkit job YAML and launch command for ``cfg`` (checked against the catalogue)."""
    import yaml

    name = f"{cfg.name}-dryrun" if dry_run else cfg.name
    job = {
        "job": "extension",
        "config": {"name": name, "process": [_process(cfg, paths, dry_run=dry_run, dry_run_steps=dry_run_steps)]},
    }
    check_aitoolkit(job)
    job["meta"] = {"name": "[name]", "version": "1.0"}
    filename = f"{'dryrun-' if dry_run else ''}{cfg.name}.yaml"
    text = yaml.safe_dump(job, sort_keys=False, allow_unicode=True)
    command = ["python", "run.py", f"{paths.config_dir}/{filename}"]
    notes = [
        f"ai-toolkit counts steps only: the epochs and repeats of the plan are turned into {cfg.total_steps} steps.",
    ]
    if cfg.trigger_word:
        notes.append("ai-toolkit adds the trigger word to captions that do not contain it.")
    if cfg.folder_repeats:
        listed = ", ".join(f"{f} x{cfg.repeats_of(f)}" for f in cfg.image_folders)
        notes.append(
            f"Each folder's repeats are written as its num_repeats ({listed}) so the folders keep their balance."
        )
    if cfg.reg_folders:
        notes.append(
            f"{', '.join(cfg.reg_folders)}: regularisation images, marked is_reg (ai-toolkit does not add the trigger "
            f"word to their captions); the {cfg.total_steps} steps count your images only."
        )
    if cfg.blocks_to_swap:
        notes.append("ai-toolkit cannot swap a set number of blocks; it offloads layers (model.layer_offloading).")
    if cfg.lr_warmup_steps:
        notes.append("ai-toolkit's job file has no warm-up setting; the warm-up steps are not used.")
    return RenderedBackend(
        backend="ai-toolkit",
        dry_run=dry_run,
        files={filename: text},
        command=command,
        command_line=shlex.join(command),
        workdir="the ai-toolkit checkout (repository root, its venv active)",
        notes=notes,
    )
