"""The step arithmetic of a plan: images per epoch over the training folders (each kohya folder with its own
repeats), steps per epoch and in all, explained in plain words and in each backend's own terms.

Regularisation folders never count as training images. How each backend treats them comes from
conventions.md (sd-scripts: reg images are repeated until they match the training images, so an epoch
holds about twice as many samples); where the reference data gives no figure, the text says so.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ategnatos_mcp.dataset.scan import KOHYA_FOLDER
from ategnatos_mcp.training.config import TrainingConfig

__all__ = ["FolderSteps", "StepSummary", "backend_steps", "backend_steps_per_epoch", "step_summary"]


class FolderSteps(BaseModel):
    """One folder of the dataset in the step arithmetic."""

    folder: str
    images: int
    repeats: int = Field(description="sd-scripts style: how many times each image is shown per epoch.")
    regularisation: bool
    views_per_epoch: int = Field(description="images x repeats; 0 for regularisation folders (not training images).")


class StepSummary(BaseModel):
    """The step arithmetic in the standard config's terms and in each backend's own terms."""

    images: int = Field(description="Training images (regularisation images are not counted).")
    repeats: int = Field(description="The plan's repeats, used by every folder that has no repeats of its own.")
    repeats_from: Literal["folders", "plan"] = Field(
        description="folders: each kohya folder keeps the repeats in its name; plan: every folder uses `repeats`."
    )
    folders: list[FolderSteps] = Field(default_factory=list, description="Per folder; empty for one flat folder.")
    images_per_epoch: int
    regularisation_images: int = 0
    batch_size: int
    gradient_accumulation: int
    epochs: int
    steps_per_epoch: int
    total_steps: int
    explanation: str = Field(description="The arithmetic in one or two plain sentences.")
    per_backend: dict[str, str]


def _folder_steps(cfg: TrainingConfig) -> list[FolderSteps]:
    if not cfg.folder_images:
        return []
    out: list[FolderSteps] = []
    for folder in cfg.image_folders:
        images, repeats, reg = cfg.folder_images[folder], cfg.repeats_of(folder), folder in cfg.reg_folders
        out.append(
            FolderSteps(
                folder=folder or ".",
                images=images,
                repeats=repeats,
                regularisation=reg,
                views_per_epoch=0 if reg else images * repeats,
            )
        )
    return out


def _explanation(cfg: TrainingConfig, folders: list[FolderSteps], repeats_from: str) -> str:
    training = [f for f in folders if not f.regularisation]
    per_epoch = cfg.samples_per_epoch
    if repeats_from == "folders":
        parts = " + ".join(f"{f.folder} {f.images} images x {f.repeats}" for f in training)
        views = f"Each folder keeps the repeats in its name: {parts} = {per_epoch} image views per epoch"
    elif any(KOHYA_FOLDER.match(f.folder) for f in folders):
        views = (
            f"The repeats you chose ({cfg.repeats}) replace the numbers in the folder names for every folder: "
            f"{cfg.image_count} images x {cfg.repeats} = {per_epoch} image views per epoch"
        )
    else:
        views = f"{cfg.image_count} images x {cfg.repeats} repeats = {per_epoch} image views per epoch"
    batch = f"batch {cfg.batch_size}" + (
        f" and accumulation {cfg.gradient_accumulation}" if cfg.gradient_accumulation > 1 else ""
    )
    if cfg.max_train_steps:
        length = f"the length is fixed at {cfg.total_steps} steps (about {cfg.effective_epochs} epochs)"
    else:
        length = f"{cfg.epochs} epochs = {cfg.total_steps} steps"
    text = f"{views}; with {batch} that is {cfg.steps_per_epoch} steps per epoch, {length}."
    reg = [f for f in folders if f.regularisation]
    if reg:
        listed = ", ".join(f"{f.folder} ({f.images} images)" for f in reg)
        text += (
            f" {listed} {'holds' if len(reg) == 1 else 'hold'} regularisation images: written as regularisation "
            "data, not counted as your training images."
        )
    return text


def backend_steps(cfg: TrainingConfig, backend: str) -> int:
    """The steps ``backend`` will really run, as far as the reference data says: sd-scripts pairs regularisation
    images with the training images, so an epoch-length run holds about twice the steps (conventions.md §1)."""
    if backend == "kohya" and cfg.reg_folders and not cfg.max_train_steps:
        return 2 * cfg.total_steps
    return cfg.total_steps


def backend_steps_per_epoch(cfg: TrainingConfig, backend: str) -> int:
    """Steps in one epoch as ``backend`` counts them (sd-scripts: twice as many with regularisation images)."""
    return 2 * cfg.steps_per_epoch if backend == "kohya" and cfg.reg_folders else cfg.steps_per_epoch


def _per_backend(cfg: TrainingConfig, folders: list[FolderSteps]) -> dict[str, str]:
    kohya_length = f"max_train_steps={cfg.max_train_steps}" if cfg.max_train_steps else f"max_train_epochs={cfg.epochs}"
    st_length = (
        f"max_train_steps={cfg.max_train_steps}, num_train_epochs=0"
        if cfg.max_train_steps
        else f"num_train_epochs={cfg.epochs}, max_train_steps=0"
    )
    if not folders or len({f.repeats for f in folders}) == 1:
        repeats = cfg.repeats_of(cfg.image_folders[0])
        kohya, st, aitk = f"num_repeats={repeats}", f"repeats={repeats - 1}", "num_repeats=1"
    else:
        kohya = "num_repeats " + ", ".join(f"{f.folder}={f.repeats}" for f in folders)
        st = "repeats " + ", ".join(f"{f.folder}={f.repeats - 1}" for f in folders)
        aitk = "num_repeats " + ", ".join(f"{f.folder}={f.repeats}" for f in folders) + " (keeps the folders' balance)"
    out = {
        "kohya": f"{kohya}, {kohya_length}",
        "simpletuner": f"{st}, {st_length}",
        "ai-toolkit": f"{aitk}, steps={cfg.total_steps}",
    }
    if cfg.reg_folders:
        # conventions.md §1 [code]: sd-scripts repeats reg images until they match the training images.
        doubled = (
            f"the length stays {cfg.total_steps} steps, so about half of them are regularisation samples"
            if cfg.max_train_steps
            else f"about {2 * cfg.steps_per_epoch} steps per epoch, about {backend_steps(cfg, 'kohya')} steps in all; "
            "the time and cost estimates count these"
        )
        out["kohya"] += (
            "; is_reg = true on the regularisation subset: sd-scripts repeats regularisation images until they match "
            f"the training images, so an epoch holds about twice as many samples ({doubled})"
        )
        out["simpletuner"] += (
            "; is_regularisation_data = true on the regularisation backend, sampled beside your images (the "
            "reference data gives no figure for how much longer that makes an epoch, so the steps above count "
            "your images only)"
        )
        out["ai-toolkit"] += (
            "; is_reg: true on the regularisation dataset (ai-toolkit does not add the trigger word to its "
            "captions; the steps above count your images only)"
        )
    return out


def step_summary(cfg: TrainingConfig) -> StepSummary:
    """The plan's step arithmetic, explained, and in each backend's own terms."""
    folders = _folder_steps(cfg)
    repeats_from = "folders" if cfg.folder_repeats else "plan"
    return StepSummary(
        images=cfg.image_count,
        repeats=cfg.repeats,
        repeats_from=repeats_from,
        folders=folders,
        images_per_epoch=cfg.samples_per_epoch,
        regularisation_images=cfg.regularisation_images,
        batch_size=cfg.batch_size,
        gradient_accumulation=cfg.gradient_accumulation,
        epochs=cfg.effective_epochs,
        steps_per_epoch=cfg.steps_per_epoch,
        total_steps=cfg.total_steps,
        explanation=_explanation(cfg, folders, repeats_from),
        per_backend=_per_backend(cfg, folders),
    )
