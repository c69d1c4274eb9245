"""The grid a contact sheet shows: which saves (rows), which weights (columns), which prompt, and how each family
is rendered in ComfyUI (template, sampler settings, the base-model files it needs).

Small by default: the last three saves x weights 0 / 0.7 / 1.0 at one prompt and one seed. Weight 0 is the base
model without the LoRA, made once per prompt and shown in every row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.training import TrainingConfig
from ategnatos_mcp.training.evaluation.models import EvalImage, EvalSave, EvalSpec
from ategnatos_mcp.training.execution.models import CheckpointInfo

__all__ = [
    "DEFAULT_WEIGHTS",
    "MAX_IMAGES",
    "RECIPES",
    "Recipe",
    "choose_saves",
    "choose_weights",
    "default_prompts",
    "job_request",
    "lora_name",
    "plan_images",
    "resolve_models",
]

DEFAULT_WEIGHTS = (0.0, 0.7, 1.0)
DEFAULT_SAVES = 3
MAX_SAVES, MAX_WEIGHTS, MAX_PROMPTS, MAX_IMAGES = 6, 5, 3, 36
_ST_WEIGHTS = "pytorch_lora_weights.safetensors"


def lora_name(run: str, info: CheckpointInfo) -> str:
    """The file's own name, except SimpleTuner's, which are all called the same."""
    name = PurePosixPath(info.file).name
    if name != _ST_WEIGHTS:
        return name
    return f"{run}-step{info.step:08d}.safetensors" if info.step is not None else f"{run}.safetensors"


def _label(info: CheckpointInfo, total_epochs: int | None) -> str:
    if info.kind == "final":
        return f"final (epoch {total_epochs})" if total_epochs else "final"
    if info.kind == "step":
        return f"step {info.step}" + (f" (epoch {info.epoch})" if info.epoch else "")
    return f"epoch {info.epoch}"


def _epoch_of(info: CheckpointInfo, total_epochs: int | None) -> int | None:
    return total_epochs if info.kind == "final" else info.epoch


def choose_saves(
    run: str, checkpoints: list[CheckpointInfo], epochs: Sequence[int] | None, total_epochs: int | None
) -> list[EvalSave]:
    """The saves to compare: the ones at ``epochs`` (the final save counts as the last epoch), else the last three.

    Raises:
        InvalidRequestError: nothing saved yet, an epoch with no save, or too many.
    """
    numbered = [c for c in checkpoints if c.kind == "epoch"] or [c for c in checkpoints if c.kind == "step"]
    final = [c for c in checkpoints if c.kind == "final"]
    if final and numbered and numbered[-1].kind == "step" and total_epochs and numbered[-1].epoch == total_epochs:
        numbered = numbered[:-1]  # SimpleTuner's last checkpoint holds the same weights as its final file
    saves = numbered + final
    if not saves:
        raise InvalidRequestError(
            f"'{run}' has no saved LoRA file to evaluate yet.",
            hint="Wait until training_status lists saved files (one per epoch), then evaluate.",
        )
    if epochs:
        wanted = list(dict.fromkeys(epochs))
        if len(wanted) > MAX_SAVES:
            raise InvalidRequestError(
                f"{len(wanted)} epochs is more than one sheet can show well.", hint=f"Pick at most {MAX_SAVES}."
            )
        chosen: list[CheckpointInfo] = []
        for epoch in wanted:
            found = [c for c in saves if _epoch_of(c, total_epochs) == epoch]
            if not found:
                have = ", ".join(str(e) for c in saves if (e := _epoch_of(c, total_epochs)) is not None)
                raise InvalidRequestError(
                    f"'{run}' has no save at epoch {epoch}.", hint=f"Saved epochs: {have or 'none numbered'}."
                )
            chosen.append(found[-1])
    else:
        chosen = saves[-DEFAULT_SAVES:]
    return [
        EvalSave(
            file=c.file,
            label=_label(c, total_epochs),
            kind=c.kind,
            epoch=_epoch_of(c, total_epochs),
            step=c.step,
            comfyui_name=f"ategnatos/{run}/{lora_name(run, c)}",
        )
        for c in chosen
    ]


def choose_weights(weights: Sequence[float] | None) -> list[float]:
    """The columns, sorted; 0 is allowed (the base model without the LoRA).

    Raises:
        InvalidRequestError: a weight outside 0-2, or too many.
    """
    chosen = sorted({round(float(w), 3) for w in (weights or DEFAULT_WEIGHTS)})
    if any(not 0 <= w <= 2 for w in chosen):
        raise InvalidRequestError(
            "LoRA weights for the sheet must be between 0 and 2 (0 shows the base model without the LoRA).",
            hint="Try 0, 0.7 and 1.0.",
        )
    if len(chosen) > MAX_WEIGHTS:
        raise InvalidRequestError(
            f"{len(chosen)} weights is too many for one sheet.", hint=f"Pick at most {MAX_WEIGHTS}."
        )
    return chosen


def default_prompts(cfg: TrainingConfig, prompts: Sequence[str] | None) -> list[str]:
    """The artist's prompts, else the plan's first sample prompt, else one built from the trigger word."""
    chosen = [" ".join(p.split()) for p in prompts or [] if p.strip()]
    if len(chosen) > MAX_PROMPTS:
        raise InvalidRequestError(
            f"{len(chosen)} prompts is too many for one sheet.", hint=f"Pick at most {MAX_PROMPTS}."
        )
    if chosen:
        return chosen
    if cfg.sample_prompts:
        return [cfg.sample_prompts[0]]
    subject = {
        "style": "a lighthouse on a cliff at dusk",
        "character": "standing in a park, full body",
    }.get(cfg.training_type, "on a plain background, close-up")
    return [f"{cfg.trigger_word}, {subject}" if cfg.trigger_word else subject]


@dataclass(frozen=True)
class Need:
    """A model file a family's template needs from ComfyUI: the parameter, its folder, how to recognise it."""

    param: str
    folder: str
    what: str
    pattern: re.Pattern[str] | None = None  # None: the base model itself


@dataclass(frozen=True)
class Recipe:
    """How a family is rendered for the sheet: its template and the usual sampler settings for it."""

    template: str
    settings: dict[str, Any]
    needs: tuple[Need, ...]
    negative: bool = True


_CHECKPOINT = Need("checkpoint", "checkpoints", "base model")
_CLIP_L = Need("clip_l", "text_encoders", "CLIP-L text encoder", re.compile(r"clip[_-]?l\b|clip_l", re.IGNORECASE))
_T5 = Need("t5", "text_encoders", "T5-XXL text encoder", re.compile(r"t5", re.IGNORECASE))
# The usual starting points of each family (the same as art/data/model_families.json "settings").
RECIPES: dict[str, Recipe] = {
    "sd15": Recipe(
        "lora-test", {"steps": 25, "cfg": 7.0, "sampler": "dpmpp_2m", "scheduler": "karras"}, (_CHECKPOINT,)
    ),
    "sdxl": Recipe(
        "lora-test", {"steps": 30, "cfg": 6.5, "sampler": "dpmpp_2m", "scheduler": "karras"}, (_CHECKPOINT,)
    ),
    "pony": Recipe(
        "lora-test",
        {"steps": 25, "cfg": 7.0, "sampler": "euler_ancestral", "scheduler": "normal", "clip_skip": 2},
        (_CHECKPOINT,),
    ),
    "illustrious": Recipe(
        "lora-test", {"steps": 28, "cfg": 5.5, "sampler": "euler_ancestral", "scheduler": "normal"}, (_CHECKPOINT,)
    ),
    "flux1": Recipe(
        "lora-test-flux",
        {"steps": 20, "guidance": 3.5},
        (
            Need("model", "diffusion_models", "FLUX.1 diffusion model"),
            _CLIP_L,
            _T5,
            Need("vae", "vae", "FLUX.1 VAE (ae)", re.compile(r"^ae\b|flux.*vae|vae.*flux", re.IGNORECASE)),
        ),
        negative=False,
    ),
    "sd35": Recipe(
        "lora-test-sd35",
        {"steps": 28, "cfg": 3.5, "sampler": "euler", "scheduler": "sgm_uniform"},
        (
            _CHECKPOINT,
            _CLIP_L,
            Need("clip_g", "text_encoders", "CLIP-G text encoder", re.compile(r"clip[_-]?g", re.IGNORECASE)),
            _T5,
        ),
    ),
}


# Hub ids a plan may name, and the file names ComfyUI users keep those models under.
_HUB_FILES = {
    "stabilityai/stable-diffusion-xl-base-1.0": ("sd_xl_base_1.0",),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ("v1-5-pruned-emaonly", "v1-5-pruned"),
    "runwayml/stable-diffusion-v1-5": ("v1-5-pruned-emaonly", "v1-5-pruned"),
    "black-forest-labs/flux.1-dev": ("flux1-dev",),
    "stabilityai/stable-diffusion-3.5-large": ("sd3.5_large",),
    "stabilityai/stable-diffusion-3.5-medium": ("sd3.5_medium",),
}
_COMPONENTS = {"clip_l": "clip_l", "t5": "t5xxl", "vae": "ae", "clip_g": "clip_g"}
_EXTENSION = re.compile(r"\.(safetensors|ckpt|pt|pth|bin|sft|gguf)$", re.IGNORECASE)


def _key(name: str) -> str:
    """'models/SD_XL_base_1.0.safetensors' -> 'sdxlbase10': how two names of one file are compared."""
    return re.sub(r"[^a-z0-9]", "", _EXTENSION.sub("", PurePosixPath(name.replace("\\", "/")).name.lower()))


def _base_keys(base_model: str) -> list[str]:
    hub = _HUB_FILES.get(base_model.strip().lower(), ())
    return list(dict.fromkeys(k for k in [_key(base_model), *map(_key, hub)] if k))


# What may follow a base model's name in another copy of the same weights (precision, pruning, baked VAE).
_PACKAGING = re.compile(r"(fp16|fp8|bf16|e4m3fn|e5m2|scaled|pruned|emaonly|ema|09vae|vaefix|vae|full|single|file)+")


def _find(listed: Sequence[str], keys: Sequence[str]) -> str | None:
    for key in keys:  # the same name first, then the same weights packaged differently (flux1-dev-fp8, ..._fp16)
        exact = [n for n in listed if _key(n) == key]
        variant = [n for n in listed if _key(n).startswith(key) and _PACKAGING.fullmatch(_key(n)[len(key) :])]
        if exact or variant:
            return (exact or variant)[0]
    return None


def _named(listed: Sequence[str], wanted: str) -> str | None:
    return next((n for n in listed if n == wanted), None) or next(
        (n for n in listed if n.casefold() == wanted.casefold() or _key(n) == _key(wanted)), None
    )


def resolve_models(
    cfg: TrainingConfig, recipe: Recipe, listing: dict[str, list[str]], checkpoint: str | None, where: str
) -> dict[str, str]:
    """The model files the family's template needs, as ComfyUI at ``where`` lists them.

    The base model is the run's own (``cfg.base_model``, matched by file name or known hub id) unless
    ``checkpoint`` names another; never a silent stand-in.

    Raises:
        InvalidRequestError: ComfyUI lacks one of them (every missing file named, with what it has instead).
    """
    chosen: dict[str, str] = {}
    missing: list[str] = []
    for need in recipe.needs:
        listed = listing.get(need.folder, [])
        if need.pattern is None:
            own = PurePosixPath(cfg.base_model.replace("\\", "/")).name
            found = (
                _named(listed, checkpoint)
                if checkpoint
                else _named(listed, own) or _find(listed, _base_keys(cfg.base_model))
            )
            asked = (
                f"'{checkpoint}' (the checkpoint you named)"
                if checkpoint
                else f"the run's base model '{cfg.base_model}'"
            )
        else:
            component = cfg.model_components.get(_COMPONENTS.get(need.param, need.param))
            found = (_named(listed, component) if component else None) or next(
                (n for n in sorted(listed) if need.pattern.search(PurePosixPath(n).name)), None
            )
            asked = f"'{component}'" if component else f"a {need.what} file"
        if found is None:
            have = ", ".join(listed[:8]) + (f" and {len(listed) - 8} more" if len(listed) > 8 else "") or "nothing"
            missing.append(f"{need.what}: {asked} is not in models/{need.folder} (it has: {have})")
        else:
            chosen[need.param] = found
    if missing:
        raise InvalidRequestError(
            f"ComfyUI at {where} cannot draw this sheet for {cfg.family_info.label}; it lacks what the pictures need "
            "besides the LoRA:\n- "
            + "\n- ".join(missing)
            + "\nNothing was queued, and the LoRA files are not the problem.",
            hint="Put those files into ComfyUI's models folders (the same base model the LoRA was trained on), or "
            "pass checkpoint= with the name of one ComfyUI lists, then call train_evaluate again.",
        )
    return chosen


def plan_images(spec: EvalSpec) -> list[EvalImage]:
    """Every picture of the sheet: per prompt, one baseline (weight 0) and each save at each other weight.

    Raises:
        InvalidRequestError: more pictures than one sheet should hold.
    """
    images: list[EvalImage] = []
    for prompt in range(len(spec.prompts)):
        if 0.0 in spec.weights:
            images.append(EvalImage(prompt=prompt, weight=0.0))
        images += [
            EvalImage(prompt=prompt, weight=w, save=s) for s in range(len(spec.saves)) for w in spec.weights if w > 0
        ]
    if len(images) > MAX_IMAGES:
        raise InvalidRequestError(
            f"That sheet would need {len(images)} pictures; one sheet holds at most {MAX_IMAGES}.",
            hint="Compare fewer saves, weights or prompts at once (the default is 3 saves x 0 / 0.7 / 1.0).",
        )
    return images


def job_request(spec: EvalSpec, image: EvalImage, width: int) -> tuple[str, dict[str, Any], list[tuple[str, float]]]:
    """The template, its parameters and the LoRA stack for one picture.

    The baseline loads a LoRA at strength 0, which ComfyUI's loaders skip entirely (the same picture as without
    it, from the same graph as the others).
    """
    params: dict[str, Any] = {"prompt": spec.prompts[image.prompt], "seed": spec.seed, "width": width, "height": width}
    params |= spec.settings | spec.models
    save = spec.saves[image.save if image.save is not None else 0]
    return spec.template, params, [(save.comfyui_name, image.weight)]
