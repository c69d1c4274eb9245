"""Presets quick / standard / thorough per training type and family, from the shared ``conventions.md``.

Each preset value comes with one plain sentence saying what it does and why this value. Sources: the
backends' docs and examples ([doc]) and community habits ([community]), as labelled in conventions.md.
"""

from __future__ import annotations

from typing import Any, Literal

from ategnatos_mcp.training.families import Family

__all__ = ["PRESET_LEVELS", "PresetLevel", "build_preset", "explain", "preset_repeats"]

PresetLevel = Literal["quick", "standard", "thorough"]
PRESET_LEVELS: tuple[str, ...] = ("quick", "standard", "thorough")

_LARGE = {"flux1", "sd35"}  # big transformer families: length is set in steps, not samples per epoch
_RANK = {
    "small": {"quick": (16, 8), "standard": (32, 16), "thorough": (64, 32)},
    "large": {"quick": (8, 8), "standard": (16, 16), "thorough": (32, 32)},
}
# conventions.md §2: choose repeats so images x repeats per epoch lands at 200-400 [community].
_SAMPLES_PER_EPOCH = {"quick": 200, "standard": 300, "thorough": 400}
_EPOCHS = {"quick": 6, "standard": 10, "thorough": 15}
# conventions.md §1/§2: 500-4000 steps for FLUX (ai-toolkit example), ~2000 for 10 images with Prodigy.
_TARGET_STEPS = {"quick": 1000, "standard": 2000, "thorough": 3000}
_TAG_FAMILIES = {"pony", "illustrious"}

EXPLANATIONS: dict[str, str] = {
    "network_rank": "How much room the LoRA has to learn; bigger learns more detail but makes a larger file and "
    "overfits sooner. {value} is the usual size for this kind of model.",
    "network_alpha": "Scales how strongly each update counts (alpha / rank); {value} is the value the backends' own "
    "examples pair with this rank.",
    "optimizer": "The method that adjusts the LoRA after each step. {value}.",
    "learning_rate": "How big each learning step is. {value}.",
    "text_encoder_lr": "Whether the part that reads prompts also learns. {value}.",
    "lr_scheduler": "How the step size changes over the run. {value}.",
    "repeats": "How many times each image is shown per epoch, so one epoch holds about {samples} image views.",
    "epochs": "How many full passes over the (repeated) images. {value} passes; a LoRA is saved along the way so "
    "you can pick the best one.",
    "max_train_steps": "The run length in steps for this model: {value} steps (500-4000 is the usual range for "
    "big transformer models).",
    "batch_size": "Images learned from at once. Larger is faster per image but needs more graphics memory; it "
    "is set to what fits your card.",
    "gradient_accumulation": "Adds up several small batches before each update, to act like a larger batch "
    "without the memory.",
    "resolution": "Training image size ({value} px); images of other shapes are sorted into buckets of about "
    "the same area, so nothing is cropped badly.",
    "caption_extension": "Caption files are '.txt' beside each image. Written explicitly because sd-scripts "
    "would otherwise look for '.caption' and silently train without your captions.",
    "shuffle_captions": "{value}.",
    "keep_tokens": "{value}.",
    "caption_dropout": "Trains {percent}% of steps without a caption, so the LoRA also works when the trigger "
    "word is left out.",
    "base_precision": "{value}.",
    "gradient_checkpointing": "Recomputes some values instead of storing them: much less graphics memory for "
    "about 20% more time.",
    "cache_latents": "Prepares every image once before training instead of at each step: faster and uses less memory.",
    "cache_text_encoder": "{value}.",
    "save_every_epochs": "Saves a LoRA file every {value} epoch(s); file names carry the epoch or step number.",
    "sample_every_epochs": "Makes preview images every {value} epoch(s) so you can watch the LoRA learn.",
    "seed": "Fixes the randomness so the same settings give the same result.",
    "mixed_precision": "Computes in bf16 (16-bit) to halve memory use with no visible loss for LoRAs.",
}


_LARGE_SAMPLES_PER_EPOCH = 100  # big transformer families: epochs of ~100 views, the length set in steps


def preset_repeats(level: str, family: Family | None, image_count: int) -> int:
    """The repeats a preset gives ``image_count`` images: about 200 / 300 / 400 image views per epoch (quick /
    standard / thorough; conventions.md §2), about 100 for FLUX.1 and SD3.5 (``family`` None: the former)."""
    large = family is not None and family.architecture in _LARGE
    target = _LARGE_SAMPLES_PER_EPOCH if large else _SAMPLES_PER_EPOCH[level]
    return max(1, round(target / max(1, image_count)))


def _optimizer_values(level: str) -> dict[str, Any]:
    if level == "thorough":
        return {"optimizer": "prodigy", "learning_rate": 1.0, "lr_scheduler": "cosine"}
    return {"optimizer": "adamw8bit", "learning_rate": 1e-4, "lr_scheduler": "constant"}


def _text_encoder_lr(family: Family, training_type: str, optimizer: str) -> float:
    if not family.text_encoder_trainable or family.architecture == "sdxl" or optimizer == "prodigy":
        return 0.0
    # conventions.md §2: styles train with text-encoder LR 0 [community]; 5e-5 for subjects on SD1.5.
    return 0.0 if training_type == "style" else 5e-5


def build_preset(
    level: str, training_type: str, family: Family, image_count: int, *, has_trigger: bool
) -> dict[str, Any]:
    """The preset values (TrainingConfig fields) for this level, training type, family and dataset size."""
    size = "large" if family.architecture in _LARGE else "small"
    rank, alpha = _RANK[size][level]
    values: dict[str, Any] = {"network_rank": rank, "network_alpha": float(alpha), **_optimizer_values(level)}
    values["text_encoder_lr"] = _text_encoder_lr(family, training_type, values["optimizer"])
    repeats = preset_repeats(level, family, image_count)
    if size == "large":
        steps_per_epoch = image_count * repeats
        epochs = max(1, round(_TARGET_STEPS[level] / steps_per_epoch))
        save_every = max(1, round(250 / steps_per_epoch))  # ai-toolkit examples save every 250 steps
    else:
        epochs = _EPOCHS[level]
        save_every = 1 if epochs <= 10 else 2
    resolution = family.default_resolution
    if family.architecture == "sd15" and training_type == "style":
        resolution = 768  # conventions.md §2: higher resolution (~768 on SD1.5) for styles [community]
    tags = family.key in _TAG_FAMILIES
    values.update(
        repeats=repeats,
        epochs=epochs,
        resolution=resolution,
        max_bucket_reso=max(resolution, min(2048, resolution * 2)),
        min_bucket_reso=min(256, resolution),
        caption_extension=".txt",
        shuffle_captions=tags,
        keep_tokens=1 if tags and has_trigger else 0,
        caption_dropout=0.05,
        base_precision="fp8" if size == "large" else "bf16",
        gradient_checkpointing=True,
        cache_latents=True,
        cache_text_encoder=not values["text_encoder_lr"],
        save_every_epochs=save_every,
        sample_every_epochs=save_every,
        mixed_precision="bf16",
        seed=42,
    )
    return values


def _optimizer_text(value: str) -> str:
    return {
        "adamw8bit": "AdamW 8-bit: the reliable default of all three backends, using less memory than plain AdamW",
        "prodigy": "Prodigy: finds its own step size as it goes, so fewer settings to get wrong; needs a bit more "
        "memory",
        "lion": "Lion: uses the least memory; needs a 3-10x smaller learning rate than AdamW",
        "adafactor": "Adafactor: the memory saver sd-scripts recommends for tight cards",
    }[value]


def explain(config_values: dict[str, Any]) -> dict[str, str]:
    """One plain sentence per setting, filled in with the chosen value."""
    v = config_values
    out: dict[str, str] = {}
    lr_text = (
        "Prodigy works with 1.0 and scales it itself"
        if v["optimizer"] == "prodigy"
        else f"{v['learning_rate']:g} "
        "(1e-4 is the common LoRA value in every backend's examples; the backends' own defaults are far too small)"
    )
    te = v.get("text_encoder_lr") or 0
    fills: dict[str, Any] = {
        "optimizer": _optimizer_text(v["optimizer"]),
        "learning_rate": lr_text,
        "text_encoder_lr": f"Yes, gently ({te:g})"
        if te
        else "No: only the image model learns, which keeps styles clean and saves memory",
        "lr_scheduler": "It stays the same all run"
        if v["lr_scheduler"] == "constant"
        else "It starts high and eases off towards the end",
        "shuffle_captions": "Shuffles comma-separated tags each step so no tag order is learned"
        if v["shuffle_captions"]
        else "Captions are kept in order (right for sentence-style captions)",
        "keep_tokens": f"Keeps the first {v['keep_tokens']} tag(s) (your trigger word) in front when shuffling"
        if v["keep_tokens"]
        else "No tags are pinned in place",
        "base_precision": {
            "bf16": "The base model is loaded at full 16-bit quality",
            "fp8": "The base model is loaded in 8-bit (fp8) to fit in memory; the LoRA itself trains at full quality",
            "int8": "The base model is compressed to 8-bit to fit in memory",
            "nf4": "The base model is compressed to 4-bit: it fits small cards at some quality cost",
        }[v["base_precision"]],
        "cache_text_encoder": "Reads every caption once and then unloads the prompt reader, saving memory"
        if v["cache_text_encoder"]
        else "The prompt reader stays loaded because it is learning too",
        "samples": v.get("samples_per_epoch") or (v["image_count"] * v["repeats"] if "image_count" in v else "?"),
        "percent": round(v["caption_dropout"] * 100),
    }
    if not v.get("sample_prompts") and "sample_every_epochs" in v:
        fills["sample_every_epochs"] = None
    for key, template in EXPLANATIONS.items():
        if key not in v or (key == "max_train_steps" and not v.get(key)):
            continue
        if key == "sample_every_epochs" and fills.get(key, 0) is None:
            out[key] = "No preview images during training: there are no sample prompts (pass sample_prompts)."
            continue
        out[key] = template.format(value=fills.get(key, v[key]), **{k: fills[k] for k in ("samples", "percent")})
    if v.get("folder_repeats") and "repeats" in out:
        reg = set(v.get("reg_folders") or ())
        own = ", ".join(f"{folder} x{n}" for folder, n in v["folder_repeats"].items() if folder not in reg)
        own += "".join(f"; regularisation {folder} x{n}" for folder, n in v["folder_repeats"].items() if folder in reg)
        out["repeats"] = (
            f"How many times each image is shown per epoch. Each folder keeps the repeats in its name ({own}), "
            f"so one epoch holds about {fills['samples']} views of your images."
        )
    if v.get("reg_folders"):
        out["reg_folders"] = (
            f"{', '.join(v['reg_folders'])} holds regularisation images: pictures of the general class that keep the "
            "rest of the model from drifting. They are trained as regularisation data, not as your images."
        )
    return out
