"""Build (or revise) a training plan: preset + dataset + card -> a validated config, its VRAM estimate,
time and cost per GPU, the backend files under ``workspace/configs/{name}/`` and the run's records.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, Field, ValidationError

from ategnatos_mcp.dataset import dataset_fingerprint, scan_dataset
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.paths import dataset_folder, safe_name
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.state import GrimoireStore, keep_copy, write_text_atomic
from ategnatos_mcp.studio import read_studio
from ategnatos_mcp.training.backends import render_backend
from ategnatos_mcp.training.base_models import CheckpointLister, resolve_base_model
from ategnatos_mcp.training.calls import dataset_gate_words
from ategnatos_mcp.training.config import TrainingConfig, is_regularisation_folder
from ategnatos_mcp.training.costs import gpu_options, run_hours, vram_inputs
from ategnatos_mcp.training.gates import note_dataset_fingerprint, read_gates, record_plan
from ategnatos_mcp.training.models import BackendName, GateState, PlanRequest, RenderedBackend, RunPaths
from ategnatos_mcp.training.plan_records import TrainingPlan, render_config_md, render_intent_md
from ategnatos_mcp.training.presets import build_preset, explain
from ategnatos_mcp.training.sample_prompts import prompts_from_captions, trigger_word_note
from ategnatos_mcp.training.steps import backend_steps, step_summary
from ategnatos_mcp.training.versions import find_versions, new_version_notice, start_version
from ategnatos_mcp.training.vram import (
    estimate_vram,
    fit_to_card,
    largest_batch,
    savers_in_order,
)

__all__ = ["build_plan"]

_MAX_AUTO_BATCH = 4
# Facts measured from the dataset, or settings that have their own argument, cannot be overridden.
_MEASURED = {"dataset_fingerprint", "image_count", "image_folders", "folder_images", "folder_repeats", "reg_folders"}
_OWN_ARGUMENT = {"name", "family", "base_model", "dataset_path", "training_type", "trigger_word", "sample_prompts"}


async def _local_vram(store: GrimoireStore) -> float | None:
    inventory = await read_studio(store)
    env = inventory.environment
    if env is None or not env.gpus:
        return None
    return round(max(g.memory_total_mib for g in env.gpus) / 1024, 1)


class _Layout(BaseModel):
    """What the dataset folder holds: images per top-level folder and the repeats in kohya folder names."""

    folder_images: dict[str, int]
    kohya_repeats: dict[str, int]
    fingerprint: str
    captions: list[str] = Field(default_factory=list, description="Caption files (.txt), relative to the dataset.")

    @property
    def folders(self) -> list[str]:
        return sorted(self.folder_images) or [""]

    @property
    def reg_folders(self) -> list[str]:
        return [f for f in self.folders if f and is_regularisation_folder(f)]

    @property
    def training_images(self) -> int:
        return sum(n for f, n in self.folder_images.items() if f not in self.reg_folders)


def _scan(dataset: Path) -> _Layout:
    scan = scan_dataset(dataset)
    counts: dict[str, int] = {}
    for entry in scan.images:
        folder = scan.concept_of(entry.rel)
        counts[folder] = counts.get(folder, 0) + 1
    return _Layout(
        folder_images=counts,
        kohya_repeats=dict(scan.concepts),
        fingerprint=dataset_fingerprint(dataset),
        captions=[c.rel for c in scan.captions if c.rel.endswith(".txt")],
    )


def _folder_values(layout: _Layout, overrides: dict[str, object]) -> dict[str, Any]:
    """The measured folder settings: own repeats of kohya folders (unless ``repeats`` is overridden), reg folders."""
    if layout.folders == [""]:
        return {}
    own = {} if "repeats" in overrides else {f: r for f, r in layout.kohya_repeats.items() if f in layout.folder_images}
    return {"folder_images": dict(layout.folder_images), "folder_repeats": own, "reg_folders": layout.reg_folders}


def _validated(values: dict[str, Any]) -> TrainingConfig:
    try:
        return TrainingConfig(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "config"
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidRequestError(
            f"The setting `{field}` cannot be used: {message}.",
            hint="Change that value (or drop the override) and plan again.",
        ) from exc


def _fit_batch(values: dict[str, Any], target_gb: float | None) -> tuple[dict[str, Any], list[str]]:
    """Choose the batch for the target card, switching savers on (in order) when even batch 1 does not fit."""
    if target_gb is None:
        return values, []
    cfg = _validated(values)
    inputs = vram_inputs(cfg)
    batch = min(largest_batch(inputs, target_gb), _MAX_AUTO_BATCH, cfg.image_count)
    if batch >= 1:
        return {**values, "batch_size": batch}, []
    applied: list[str] = []
    for saver in savers_in_order(inputs, target_gb):
        applied.append(saver.saver)
        if saver.saver == "gradient checkpointing":
            values["gradient_checkpointing"] = True
        elif saver.saver == "caching":
            values.update(cache_latents=True, cache_text_encoder=not values.get("text_encoder_lr"))
        elif saver.saver == "8-bit optimizer":
            values.update(optimizer="adamw8bit", learning_rate=1e-4, lr_scheduler="constant")
        elif saver.saver == "fp8 base model":
            values["base_precision"] = "fp8"
        elif saver.saver.startswith("block swap"):
            values["blocks_to_swap"] = int(saver.saver.split("(")[1].rstrip(")"))
    return {**values, "batch_size": 1}, applied


def _check_overrides(overrides: dict[str, object]) -> None:
    unknown = sorted(set(overrides) - set(TrainingConfig.model_fields))
    if unknown:
        raise InvalidRequestError(
            f"Unknown setting(s) in overrides: {', '.join(unknown)}.",
            hint="Use the standard config's names, e.g. network_rank, learning_rate, epochs, batch_size.",
        )
    measured = sorted(set(overrides) & _MEASURED)
    if measured:
        raise InvalidRequestError(
            f"{', '.join(measured)} is measured from the dataset and cannot be overridden.",
            hint="Change the dataset folder instead; the plan counts it again.",
        )
    own = sorted(set(overrides) & _OWN_ARGUMENT)
    if own:
        raise InvalidRequestError(
            f"{', '.join(own)} has its own argument in train_plan; it cannot go in overrides.",
            hint=f"Pass {own[0]}=... directly.",
        )


async def build_plan(
    settings: Settings, store: GrimoireStore, request: PlanRequest, *, comfyui: CheckpointLister | None = None
) -> TrainingPlan:
    """Build or revise the plan called ``request.name`` and write its files and records.

    Without a base model, one is chosen from the studio's models of the family, else a downloadable id; ComfyUI's
    checkpoints (``comfyui()``: url -> file names, asked only then) are offered beside them.

    Raises:
        InvalidRequestError: unknown family, unusable setting or override, an empty dataset.
        PathNotAllowedError: the dataset is outside the project's folders.
    """
    asked = safe_name(request.name, what="training run name")
    dataset = dataset_folder(
        request.dataset_path, home=settings.home, roots=settings.roots, datasets_dir=settings.datasets_dir
    )
    # A trained name is never planned again: the plan goes to its next version (own name, folders, records).
    name = (await find_versions(store, asked, taken=functools.partial(_has_folders, settings))).next_name
    request = request.model_copy(update={"name": name, "dataset_path": str(dataset)})
    base_model, family, choices, base_note = await resolve_base_model(store, request, comfyui)
    layout = await anyio.to_thread.run_sync(_scan, dataset)
    if not layout.folder_images:
        raise InvalidRequestError(
            f"There are no images in {dataset}.", hint="Put the training images (and their .txt captions) there."
        )
    image_count = layout.training_images
    if image_count == 0:
        raise InvalidRequestError(
            f"{dataset} holds only regularisation images ({', '.join(layout.reg_folders)}), nothing to learn from.",
            hint="Add a folder of your own images beside it, e.g. with dataset_structure (folders named reg, "
            "regularisation, regularization or class are treated as regularisation images).",
        )
    prompts, made = list(request.sample_prompts), []
    if not prompts:
        made = prompts = await anyio.to_thread.run_sync(
            functools.partial(prompts_from_captions, dataset, layout.captions, request.trigger_word, family)
        )
    values: dict[str, Any] = {
        "name": name,
        "family": family.key,
        "base_model": base_model,
        "training_type": request.training_type,
        "dataset_path": str(dataset),
        "dataset_fingerprint": layout.fingerprint,
        "image_folders": layout.folders,
        "image_count": image_count,
        **_folder_values(layout, request.overrides),
        "trigger_word": request.trigger_word,
        "sample_prompts": prompts,
        **build_preset(
            request.preset, request.training_type, family, image_count, has_trigger=bool(request.trigger_word)
        ),
    }
    _validated(values)  # bad trigger word or prompt: say so before anything else
    target_gb = request.gpu_vram_gb or await _local_vram(store)
    values, applied = _fit_batch(values, target_gb)
    _check_overrides(request.overrides)
    cfg = _validated({**values, **request.overrides})
    notice = None
    if name != asked:
        carried = await start_version(store, name, of=asked, dataset_path=dataset, fingerprint=layout.fingerprint)
        notice = new_version_notice(await read_gates(store, asked), name, carried)
    preview = (
        "Preview prompts built from your captions (pass sample_prompts to choose your own): " + " | ".join(made)
        if made
        else None
        if prompts
        else "No preview images: no sample prompts, and no captions to build them from (pass sample_prompts)."
    )
    notes = [
        n
        for n in (
            base_note,
            trigger_word_note(request.training_type, request.trigger_word),
            preview,
            _repeats_difference(cfg, values["repeats"], request.preset),
        )
        if n
    ]
    plan = await _finish(settings, store, request, cfg, target_gb, applied, notes)
    plan.base_model_choices = choices
    if notice is not None:
        plan.new_version_of = asked
        plan.notices.insert(0, notice)
    return plan


def _repeats_difference(cfg: TrainingConfig, preset_repeats: int, level: str) -> str | None:
    """What the repeats in the kohya folder names do to the run, when they are not the preset's."""
    if not cfg.folder_repeats:
        return None
    preset = cfg.model_copy(update={"folder_repeats": {}, "repeats": preset_repeats})
    own, wanted = cfg.total_steps, preset.total_steps
    if abs(own - wanted) <= 0.1 * wanted:
        return None
    effect = (
        "it learns less and may come out weak" if own < wanted else "it learns more and may overfit (copy the images)"
    )
    return (
        f"The folder names set the repeats, so an epoch holds {cfg.samples_per_epoch} image views where the {level} "
        f"preset aims at {preset.samples_per_epoch}: the run is {own} steps instead of {wanted}, so {effect}. To use "
        f"the preset's {preset_repeats} repeats, plan again with overrides={{'repeats': {preset_repeats}}} (or lay "
        f"the folder out again with dataset_structure, which follows the preset)."
    )


def _has_folders(settings: Settings, name: str) -> bool:
    """Whether a run called ``name`` left files in the workspace (a plan's or a run's folder)."""
    return (settings.configs_dir / name).exists() or (settings.workspace_dir / "training" / name).exists()


async def _finish(
    settings: Settings,
    store: GrimoireStore,
    request: PlanRequest,
    cfg: TrainingConfig,
    target_gb: float | None,
    applied: list[str],
    extra_notes: list[str],
) -> TrainingPlan:
    backend: BackendName = request.backend or settings.training.default_backend
    config_dir = settings.configs_dir / cfg.name
    paths = RunPaths(
        dataset_dir=cfg.dataset_path,
        config_dir=str(config_dir),
        output_dir=str(settings.workspace_dir / "training" / cfg.name),
    )
    rendered = render_backend(cfg, backend, paths)
    dry = render_backend(cfg, backend, paths, dry_run=True)
    # Before a name's first plan its folder holds no file of ours: whatever differs there is the artist's, kept.
    first_plan = (await read_gates(store, cfg.name)).planned_config_hash is None
    written, kept = await anyio.to_thread.run_sync(_write_files, config_dir, first_plan, rendered, dry)
    estimate = estimate_vram(vram_inputs(cfg))
    fit = fit_to_card(estimate, target_gb) if target_gb else None
    suggested = savers_in_order(vram_inputs(cfg), target_gb) if target_gb and fit != "fits" else []
    plan_values = {**cfg.model_dump(), "image_count": cfg.image_count, "samples_per_epoch": cfg.samples_per_epoch}
    plan = TrainingPlan(
        name=cfg.name,
        backend=backend,
        config=cfg,
        config_hash=cfg.config_hash,
        explanations=explain(plan_values),
        steps=step_summary(cfg),
        vram=estimate,
        target_gpu_gb=target_gb,
        fit=fit,
        savers_applied=applied,
        savers_suggested=suggested,
        gpus=gpu_options(cfg, steps=backend_steps(cfg, backend)),
        hours_on_target=run_hours(cfg, 1.0, steps=backend_steps(cfg, backend)) if target_gb else None,
        config_dir=str(config_dir),
        files=written,
        command=rendered.command_line,
        dry_run_command=dry.command_line,
        notes=[*cfg.family_info.notes, *rendered.notes, *extra_notes],
        gates=GateState(),
    )
    before = (await read_gates(store, cfg.name)).notices
    records = {"intent.md": render_intent_md(request, cfg), "config.md": render_config_md(plan)}
    gates, notices = await record_plan(
        store,
        cfg.name,
        config_hash=cfg.config_hash,
        backend=backend,
        records=records,
        config=cfg.model_dump(mode="json"),
        request=request.model_dump(mode="json", exclude={"name"}, exclude_defaults=True),
    )
    if cfg.dataset_fingerprint:
        gates = await note_dataset_fingerprint(store, cfg.name, cfg.dataset_fingerprint, cfg.dataset_path)
    plan.gates = gates
    plan.dataset_gate_holds, plan.dataset_gate, plan.dataset_audit_call = dataset_gate_words(
        gates, cfg.dataset_fingerprint
    )
    plan.notices = [*notices, *(n for n in gates.notices if n not in before)]
    if kept:
        plan.notices.append(
            f"{config_dir} already held files of the same names, not written by this plan; kept as "
            f"{', '.join(kept)} beside the new ones."
        )
    return plan


def _write_files(config_dir: Path, keep_existing: bool, *rendered: RenderedBackend) -> tuple[list[str], list[str]]:
    """Write the backend's files; with ``keep_existing``, a different file already under a name is kept first.

    Returns the files written and the names of the copies kept.
    """
    written: list[str] = []
    kept: list[str] = []
    for item in rendered:
        for filename, text in item.files.items():
            path = config_dir / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            if keep_existing and path.is_file() and (old := path.read_bytes()) != text.encode("utf-8"):
                kept.append(keep_copy(path, old, "backup", datetime.now(UTC)).name)
            write_text_atomic(path, text)
            written.append(str(path))
    return written, kept
