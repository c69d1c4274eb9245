"""The standard training config: one validated description of a LoRA run, rendered later into each backend.

Step arithmetic follows conventions.md: with N images, R repeats (sd-scripts style, >= 1), batch B,
gradient accumulation A and E epochs, ``steps_per_epoch = ceil(N * R / B) / A`` (rounded up) and
``total_steps = E * steps_per_epoch``, unless ``max_train_steps`` fixes the length directly.

Kohya folder layouts (``{repeats}_{name}`` folders, e.g. from dataset_structure): each folder keeps its own
repeats (``folder_repeats``), so the images per epoch are the sum of images x repeats over the *training*
folders (``folder_images``). Folders in ``reg_folders`` hold regularisation images: they are written as
regularisation data for each backend and never count as training images. Folders not in ``folder_repeats``
use ``repeats``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ategnatos_mcp.dataset.scan import REGULARISATION_NAMES, is_regularisation_folder
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.training.families import Family, resolve_family

__all__ = [
    "OPTIMIZERS",
    "TRAINING_TYPES",
    "REGULARISATION_NAMES",
    "BasePrecision",
    "OptimizerName",
    "TrainingConfig",
    "TrainingType",
    "check_trigger_word",
    "is_regularisation_folder",
]

TrainingType = Literal["character", "style", "concept", "object"]
OptimizerName = Literal["prodigy", "adamw8bit", "lion", "adafactor"]
BasePrecision = Literal["bf16", "fp8", "int8", "nf4"]
TRAINING_TYPES: tuple[str, ...] = ("character", "style", "concept", "object")
OPTIMIZERS: tuple[str, ...] = ("prodigy", "adamw8bit", "lion", "adafactor")

# A trigger word ends up inside caption files and prompts: commas split tags, newlines split captions
# (SimpleTuner reads one caption per line), brackets and colons are prompt syntax ([trigger], (word:1.2)).
_TRIGGER = re.compile(r"^[\w][\w.\- ]{0,38}[\w]$|^\w$")


def check_trigger_word(value: str) -> str:
    """Return the trigger word if it is safe inside caption files and prompts, else raise ``ValueError``."""
    if not _TRIGGER.fullmatch(value) or "  " in value:
        raise ValueError(
            f"the trigger word {value!r} would break caption files or prompts; use 1-40 letters, digits, '_', '-' "
            "or '.', with single spaces inside (no commas, brackets, colons or line breaks)"
        )
    return value


class TrainingConfig(BaseModel):
    """Everything a LoRA run needs, independent of the backend. ``config_hash`` identifies it exactly."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(description="Run name; also the LoRA's file name.")
    family: str = Field(description="Model family key (sd15, sdxl, pony, illustrious, flux1, sd35).")
    base_model: str = Field(description="Base model file path or hub id.")
    model_components: dict[str, str] = Field(
        default_factory=dict, description="Extra model files a backend needs (clip_l, t5xxl, ae...)."
    )
    training_type: TrainingType = "character"
    dataset_path: str
    dataset_fingerprint: str | None = None
    image_folders: list[str] = Field(default_factory=lambda: [""], description="Sub-folders holding the images.")
    image_count: int = Field(ge=1, description="Training images (regularisation images are not counted).")
    folder_images: dict[str, int] = Field(
        default_factory=dict, description="Images in each folder of image_folders (measured); empty: one flat folder."
    )
    folder_repeats: dict[str, int] = Field(
        default_factory=dict, description="Each kohya folder's own repeats; folders not listed use `repeats`."
    )
    reg_folders: list[str] = Field(
        default_factory=list, description="Folders of regularisation images (not counted as training images)."
    )
    trigger_word: str | None = None

    network_rank: int = Field(ge=1, le=256)
    network_alpha: float = Field(gt=0, le=256)
    optimizer: OptimizerName = "adamw8bit"
    learning_rate: float = Field(gt=0, le=10)
    text_encoder_lr: float | None = Field(default=None, ge=0, le=1, description="None or 0: text encoders frozen.")
    lr_scheduler: Literal["constant", "cosine", "constant_with_warmup"] = "constant"
    lr_warmup_steps: int = Field(default=0, ge=0)

    epochs: int = Field(ge=1, le=1000)
    max_train_steps: int | None = Field(default=None, ge=1, description="Fixes the length in steps instead of epochs.")
    repeats: int = Field(default=1, ge=1, le=1000)
    batch_size: int = Field(default=1, ge=1, le=64)
    gradient_accumulation: int = Field(default=1, ge=1, le=64)

    resolution: int = Field(ge=256, le=2048, multiple_of=64)
    enable_buckets: bool = True
    min_bucket_reso: int = Field(default=256, ge=64, multiple_of=64)
    max_bucket_reso: int = Field(default=2048, le=4096, multiple_of=64)

    caption_extension: Literal[".txt", ".caption"] = ".txt"
    shuffle_captions: bool = False
    keep_tokens: int = Field(default=0, ge=0, le=32)
    caption_dropout: float = Field(default=0.0, ge=0, le=1)

    mixed_precision: Literal["bf16", "fp16"] = "bf16"
    base_precision: BasePrecision = "bf16"
    gradient_checkpointing: bool = True
    cache_latents: bool = True
    cache_text_encoder: bool = True
    blocks_to_swap: int = Field(default=0, ge=0, le=60)
    seed: int = Field(default=42, ge=0, le=2**31 - 1)

    sample_prompts: list[str] = Field(default_factory=list)
    sample_every_epochs: int = Field(default=1, ge=0, description="0 = no sample images during training.")
    save_every_epochs: int = Field(default=1, ge=1)

    @field_validator("trigger_word")
    @classmethod
    def _trigger(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else check_trigger_word(value)

    @field_validator("family")
    @classmethod
    def _family(cls, value: str) -> str:
        try:
            return resolve_family(value).key
        except InvalidRequestError as exc:
            raise ValueError(f"{exc.message} {exc.hint}") from exc

    @field_validator("sample_prompts")
    @classmethod
    def _prompts(cls, value: list[str]) -> list[str]:
        if any("\n" in p or "\r" in p for p in value):
            raise ValueError("a sample prompt may not contain a line break (each prompt is one line)")
        return value

    @model_validator(mode="after")
    def _folders(self) -> TrainingConfig:
        folders = set(self.image_folders)
        unknown = (set(self.folder_images) | set(self.folder_repeats) | set(self.reg_folders)) - folders
        if unknown:
            raise ValueError(f"folder(s) {', '.join(sorted(unknown))} are not among image_folders")
        if any(r < 1 or r > 1000 for r in self.folder_repeats.values()):
            raise ValueError("a folder's repeats must be between 1 and 1000")
        if (self.folder_repeats or self.reg_folders) and set(self.folder_images) != folders:
            raise ValueError("folder_images must count the images of every folder when folders have own settings")
        if self.folder_images:
            if not self.training_folders:
                raise ValueError("every folder holds regularisation images; there are no training images")
            counted = sum(self.folder_images[f] for f in self.training_folders)
            if counted != self.image_count:
                raise ValueError(f"image_count {self.image_count} differs from the training folders' {counted}")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> TrainingConfig:
        if self.min_bucket_reso > self.resolution or self.max_bucket_reso < self.resolution:
            raise ValueError("min_bucket_reso <= resolution <= max_bucket_reso is required")
        family = resolve_family(self.family)
        if self.text_encoder_lr and not family.text_encoder_trainable:
            raise ValueError(f"{family.label} LoRAs train the image model only here; set text_encoder_lr to 0")
        if self.blocks_to_swap and not family.block_count:
            raise ValueError(f"block swapping is not available for {family.label}")
        if self.blocks_to_swap > family.block_count:
            raise ValueError(f"{family.label} has {family.block_count} blocks; blocks_to_swap cannot be larger")
        return self

    # Derived values ---------------------------------------------------------------------------------
    @property
    def family_info(self) -> Family:
        return resolve_family(self.family)

    @property
    def trains_text_encoder(self) -> bool:
        return bool(self.text_encoder_lr)

    @property
    def training_folders(self) -> list[str]:
        """The folders of training images (all but the regularisation folders)."""
        return [f for f in self.image_folders if f not in self.reg_folders]

    def repeats_of(self, folder: str) -> int:
        """How many times ``folder``'s images are shown per epoch (sd-scripts style, >= 1)."""
        return self.folder_repeats.get(folder, self.repeats)

    @property
    def samples_per_epoch(self) -> int:
        """Training images seen per epoch: images x repeats, summed over the training folders."""
        if not self.folder_images:
            return self.image_count * self.repeats
        return sum(self.folder_images[f] * self.repeats_of(f) for f in self.training_folders)

    @property
    def regularisation_images(self) -> int:
        return sum(self.folder_images.get(f, 0) for f in self.reg_folders)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(math.ceil(self.samples_per_epoch / self.batch_size) / self.gradient_accumulation)

    @property
    def total_steps(self) -> int:
        """Optimizer steps of the whole run (conventions.md arithmetic; per-bucket rounding ignored)."""
        return self.max_train_steps or self.epochs * self.steps_per_epoch

    @property
    def effective_epochs(self) -> int:
        """Epochs the run covers (rounded up when the length is given in steps)."""
        return math.ceil(self.total_steps / self.steps_per_epoch)

    @property
    def config_hash(self) -> str:
        """A short, stable digest of every setting: the user confirms exactly this."""
        dumped = self.model_dump(mode="json")
        for key in ("folder_images", "folder_repeats", "reg_folders"):  # added later: unset ones keep old hashes
            if not dumped[key]:
                del dumped[key]
        canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
