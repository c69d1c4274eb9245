"""kohya sd-scripts: a ``--config_file`` TOML of arguments plus a dataset TOML, launched with accelerate.

Repeats stay sd-scripts style (``num_repeats`` = R, each kohya folder with its own R); regularisation
folders are subsets with ``is_reg = true`` (no ``class_tokens``: they are not the trigger). The length is ``max_train_epochs`` (which overrides
``max_train_steps``) unless the config fixes steps. Defaults that would silently ruin a run are written
explicitly: ``learning_rate`` (default 2e-6), ``caption_extension`` (default ``.caption``),
``network_dim``/``network_alpha`` (default 4/1), ``mixed_precision`` (default ``no``).
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import Any

from ategnatos_mcp.dataset.scan import KOHYA_FOLDER
from ategnatos_mcp.training.backends.catalogue import check_kohya_args, check_kohya_dataset
from ategnatos_mcp.training.config import TrainingConfig
from ategnatos_mcp.training.models import DRY_RUN_STEPS, RenderedBackend, RunPaths

__all__ = ["render_kohya", "state_folder_name"]

_OPTIMIZER = {"adamw8bit": "AdamW8bit", "prodigy": "Prodigy", "lion": "Lion", "adafactor": "Adafactor"}
_OPTIMIZER_ARGS = {
    # conventions.md §4 [community]/[doc]
    "prodigy": [
        "decouple=True",
        "weight_decay=0.01",
        "d_coef=1",
        "use_bias_correction=True",
        "safeguard_warmup=True",
        "betas=0.9,0.99",
    ],
    "adafactor": ["scale_parameter=False", "relative_step=False", "warmup_init=False"],
}


def _args(
    cfg: TrainingConfig,
    paths: RunPaths,
    *,
    dry_run: bool,
    dry_run_steps: int = DRY_RUN_STEPS,
    dataset_file: str,
    prompts_file: str | None,
) -> dict[str, Any]:
    fam = cfg.family_info
    suffix = "-dryrun" if dry_run else ""
    args: dict[str, Any] = {
        "pretrained_model_name_or_path": cfg.base_model,
        "dataset_config": f"{paths.config_dir}/{dataset_file}",
        "output_dir": f"{paths.output_dir}{'/dryrun' if dry_run else ''}",
        "output_name": f"{cfg.name}{suffix}",
        "save_model_as": "safetensors",
        "network_module": fam.kohya.network_module,
        "network_dim": cfg.network_rank,
        "network_alpha": cfg.network_alpha,
        "optimizer_type": _OPTIMIZER[cfg.optimizer],
        "learning_rate": cfg.learning_rate,
        "lr_scheduler": "constant_with_warmup" if cfg.optimizer == "adafactor" else cfg.lr_scheduler,
        "lr_warmup_steps": cfg.lr_warmup_steps,
        "gradient_accumulation_steps": cfg.gradient_accumulation,
        "mixed_precision": cfg.mixed_precision,
        "save_precision": cfg.mixed_precision,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "cache_latents": cfg.cache_latents,
        "cache_latents_to_disk": cfg.cache_latents,
        "sdpa": True,
        "seed": cfg.seed,
        "console_log_simple": True,
    }
    if cfg.optimizer in _OPTIMIZER_ARGS:
        args["optimizer_args"] = list(_OPTIMIZER_ARGS[cfg.optimizer])
    if cfg.optimizer == "adafactor" and fam.architecture == "flux1":
        args["max_grad_norm"] = 0.0
    if cfg.trains_text_encoder:
        args["text_encoder_lr"] = [cfg.text_encoder_lr]
    else:
        args["network_train_unet_only"] = True
    if cfg.cache_text_encoder and not cfg.trains_text_encoder and fam.architecture != "sd15":
        args["cache_text_encoder_outputs"] = True
        args["cache_text_encoder_outputs_to_disk"] = True
    if cfg.base_precision != "bf16":
        args["fp8_base"] = True
    if cfg.blocks_to_swap:
        args["blocks_to_swap"] = cfg.blocks_to_swap
    base_folder = PurePosixPath(cfg.base_model).parent
    for component, default_file in fam.kohya.components.items():
        args[component] = cfg.model_components.get(component, str(base_folder / default_file))
    args.update(fam.kohya.extra_args)
    if dry_run:
        args["max_train_steps"] = dry_run_steps
    else:
        if cfg.max_train_steps:
            args["max_train_steps"] = cfg.max_train_steps
        else:
            args["max_train_epochs"] = cfg.epochs
        args["save_every_n_epochs"] = cfg.save_every_epochs
        # Honest resume: a "-state" folder (optimizer, step counter) beside each saved epoch; keep the newest only.
        args["save_state"] = True
        args["save_last_n_epochs_state"] = 1
        if prompts_file and cfg.sample_every_epochs:
            args["sample_prompts"] = f"{paths.config_dir}/{prompts_file}"
            args["sample_every_n_epochs"] = cfg.sample_every_epochs
            args["sample_sampler"] = "euler_a" if fam.architecture in ("sd15", "sdxl") else "euler"
    return args


def state_folder_name(output_name: str, epoch: int) -> str:
    """sd-scripts' name for the state saved at the end of ``epoch`` (``EPOCH_STATE_NAME``)."""
    return f"{output_name}-{epoch:06d}-state"


def _dataset(cfg: TrainingConfig, paths: RunPaths) -> dict[str, Any]:
    general: dict[str, Any] = {
        "caption_extension": cfg.caption_extension,
        "shuffle_caption": cfg.shuffle_captions,
        "keep_tokens": cfg.keep_tokens,
        "caption_dropout_rate": cfg.caption_dropout,
        "enable_bucket": cfg.enable_buckets,
        "min_bucket_reso": cfg.min_bucket_reso,
        "max_bucket_reso": cfg.max_bucket_reso,
        "bucket_reso_steps": 64,
        "bucket_no_upscale": True,
    }
    subsets: list[dict[str, Any]] = []
    for folder in cfg.image_folders:
        subset: dict[str, Any] = {
            "image_dir": f"{paths.dataset_dir}/{folder}".rstrip("/"),
            "num_repeats": cfg.repeats_of(folder),
        }
        if folder in cfg.reg_folders:
            subset["is_reg"] = True
        elif cfg.trigger_word:
            subset["class_tokens"] = cfg.trigger_word
        subsets.append(subset)
    return {
        "general": general,
        "datasets": [{"resolution": cfg.resolution, "batch_size": cfg.batch_size, "subsets": subsets}],
    }


def render_kohya(
    cfg: TrainingConfig, paths: RunPaths, *, dry_run: bool = False, dry_run_steps: int = DRY_RUN_STEPS
) -> RenderedBackend:
    """The sd-scripts files and launch command for ``cfg`` (checked against the catalogue)."""
    import tomli_w

    fam = cfg.family_info
    prefix = "dryrun-" if dry_run else ""
    args_file, dataset_file = f"{prefix}{cfg.name}.toml", f"{prefix}{cfg.name}-dataset.toml"
    prompts_file = "sample-prompts.txt" if cfg.sample_prompts and not dry_run else None
    args = _args(
        cfg, paths, dry_run=dry_run, dry_run_steps=dry_run_steps, dataset_file=dataset_file, prompts_file=prompts_file
    )
    dataset = _dataset(cfg, paths)
    check_kohya_args(args, fam.kohya.script)
    check_kohya_dataset(dataset)
    files = {args_file: tomli_w.dumps(args), dataset_file: tomli_w.dumps(dataset)}
    if prompts_file:
        files[prompts_file] = "".join(f"{p} --w {cfg.resolution} --h {cfg.resolution}\n" for p in cfg.sample_prompts)
    command = [
        "accelerate",
        "launch",
        "--num_cpu_threads_per_process",
        "1",
        fam.kohya.script,
        f"--config_file={paths.config_dir}/{args_file}",
    ]
    notes = (
        [
            "Captions are used as written; the trigger word is only used for images without a caption file, "
            "so make sure your captions contain it."
        ]
        if cfg.trigger_word
        else []
    )
    named = [f for f in cfg.image_folders if f and KOHYA_FOLDER.match(f.split("/")[0])]
    if cfg.folder_repeats:
        listed = ", ".join(f"{f} x{cfg.repeats_of(f)}" for f in cfg.image_folders)
        notes.append(
            f"Each folder is repeated as its name says ({listed}), written as num_repeats in the dataset TOML."
        )
    elif named:
        notes.append(
            f"The repeats chosen for this plan ({cfg.repeats}) replace the numbers in the folder names: every folder "
            "is repeated that many times."
        )
    if cfg.reg_folders:
        notes.append(
            f"{', '.join(cfg.reg_folders)}: regularisation images (is_reg = true). sd-scripts repeats them until they "
            "match your training images, so each epoch holds about twice as many steps; they keep the rest of the "
            "model from drifting and are not learned as your style or subject."
        )
    if cfg.base_precision in ("int8", "nf4"):
        notes.append(f"sd-scripts cannot load the base model as {cfg.base_precision}; it uses fp8 (fp8_base) instead.")
    if cfg.cache_text_encoder and fam.architecture == "sd15":
        notes.append("train_network.py cannot cache text-encoder outputs for SD1.5; the text encoder stays loaded.")
    if fam.kohya.components:
        listed = ", ".join(f"{k}={args[k]}" for k in fam.kohya.components)
        notes.append(f"{fam.label} also needs these files on the training machine: {listed}.")
    return RenderedBackend(
        backend="kohya",
        dry_run=dry_run,
        files=files,
        command=command,
        command_line=shlex.join(command),
        workdir="the sd-scripts checkout (repository root, its venv active)",
        notes=notes,
    )
