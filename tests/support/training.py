"""Training builders shared by the unit, tools and integration tests: configs for the 'ink' run, its four gates
recorded directly, and a fingerprint of every file under a folder."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.training import (
    EnvironmentReport,
    TrainingConfig,
    record_confirmation,
    record_dataset_gate,
    record_dry_run_gate,
    record_environment_gate,
    record_plan,
    resolve_family,
)
from ategnatos_mcp.training.presets import build_preset

# Two training concepts with different repeats and a regularisation folder, as dataset_structure lays them out.
FOLDERS = {"1_reg": 5, "3_sketch": 6, "8_ink": 10}
REPEATS = {"1_reg": 1, "3_sketch": 3, "8_ink": 8}


def make_config(dataset: Path, images: int = 4, **changes: Any) -> TrainingConfig:
    """A quick SDXL style config for the images in ``dataset``: 3 epochs at batch 1, one repeat."""
    fam = resolve_family("sdxl")
    values = build_preset("quick", "style", fam, images, has_trigger=True)
    values.update(
        name="ink",
        family="sdxl",
        base_model="/models/base.safetensors",
        dataset_path=str(dataset),
        image_count=images,
        trigger_word="ink_style",
        repeats=1,
        epochs=3,
        batch_size=1,
        gradient_accumulation=1,
    )
    values.update(changes)
    return TrainingConfig(**values)


def layered_config(**changes: Any) -> TrainingConfig:
    """A standard SDXL style config over ``FOLDERS``: two concepts with their repeats and a regularisation folder."""
    values = build_preset("standard", "style", resolve_family("sdxl"), 16, has_trigger=True)
    values.update(
        name="ink",
        family="sdxl",
        base_model="/models/base.safetensors",
        dataset_path="/data/ink",
        image_folders=list(FOLDERS),
        folder_images=dict(FOLDERS),
        folder_repeats=dict(REPEATS),
        reg_folders=["1_reg"],
        image_count=16,
        trigger_word="ink_style",
        batch_size=2,
        epochs=10,
    )
    values.update(changes)
    return TrainingConfig(**values)


async def record_all_gates(
    store: GrimoireStore, *, fingerprint: str = "fp-1", config: str = "cfg-1", host: str = "pod-a"
) -> None:
    """Gates 1-4 of run 'ink' passed, for that dataset fingerprint, config hash and host."""
    await record_dataset_gate(
        store,
        "ink",
        dataset_path=Path("/d/ink"),
        fingerprint=fingerprint,
        go=True,
        reasons=[],
        report_markdown="# ok\n",
    )
    await record_plan(store, "ink", config_hash=config, backend="kohya", records={"config.md": "# config\n"})
    await record_confirmation(store, "ink", config_hash=config, method="explicit")
    await record_environment_gate(store, "ink", host=host, report=EnvironmentReport(passed=True, facts={"GPU": "4090"}))
    await record_dry_run_gate(store, "ink", host=host, config_hash=config, passed=True, log_tail="steps: 100%")


def file_hashes(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
