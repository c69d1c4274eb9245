"""The studio inventory: the artist's environment, models, LoRAs, workflows and running instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ategnatos_mcp.state import Document, Migration

__all__ = [
    "STUDIO_DOCUMENT",
    "ComfyUIServerInfo",
    "Environment",
    "GpuInfo",
    "InstanceEntry",
    "LoraEntry",
    "LoraProvenance",
    "ModelEntry",
    "ModelKind",
    "StudioInventory",
    "WorkflowEntry",
]

STUDIO_DOCUMENT = "studio"

ModelKind = Literal["checkpoint", "vae", "upscaler", "controlnet", "embedding", "text-encoder", "other"]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _other_columns() -> Any:
    return Field(default_factory=dict, description="Columns the artist added to the table in studio.md, by heading.")


class ModelEntry(_Entry):
    """A checkpoint or other model file the artist has."""

    name: str
    kind: ModelKind = "checkpoint"
    base: str = Field(default="", description="Model family, e.g. SDXL, Pony, FLUX.1.")
    good_for: str = ""
    location: str = ""
    settings: str = Field(default="", description="What works with it, e.g. 'CFG 7, clip_skip 2'.")
    provenance: str = Field(default="", description="Where it came from (URL, author, licence).")
    other_columns: dict[str, str] = _other_columns()


class LoraProvenance(_Entry):
    """Where a kept LoRA came from, as the studio records it."""

    run: str
    base_model: str
    family: str
    trigger_word: str | None = None
    dataset_path: str = ""
    dataset_hash: str | None = None
    config_hash: str = ""
    backend: str = ""
    epoch: int | None = None
    step: int | None = None
    source: str = Field(description="The file it was copied from: host and path.")
    sha256: str
    weight: float = Field(description="The weight the artist chose.")
    verdict: str = ""
    sheet: str | None = Field(default=None, description="The contact sheet the choice was made on.")
    kept_at: datetime


class LoraEntry(_Entry):
    """A LoRA with what it takes to use it well."""

    name: str
    trigger_words: list[str] = Field(default_factory=list)
    weight_min: float = Field(default=0.6, ge=-5, le=5)
    weight_max: float = Field(default=1.0, ge=-5, le=5)
    base_model: str = ""
    trained_on: str = Field(default="", description="What it was trained on (provenance).")
    location: str = ""
    other_columns: dict[str, str] = _other_columns()
    provenance: LoraProvenance | None = Field(
        default=None, description="For a LoRA trained here: run, dataset, config, save, chosen weight, verdict."
    )


class WorkflowEntry(_Entry):
    """A ComfyUI workflow the artist uses."""

    name: str
    description: str = ""
    location: str = ""
    other_columns: dict[str, str] = _other_columns()


class InstanceEntry(_Entry):
    """A rented GPU instance (kept in sync by the gpu tools)."""

    provider: str
    instance_id: str
    name: str = ""
    gpu: str = ""
    status: str = ""
    usd_per_hour: float = 0.0
    started_at: datetime | None = None
    ssh_host: str | None = None
    ssh_port: int | None = None


class GpuInfo(_Entry):
    index: int
    name: str
    memory_total_mib: int
    memory_used_mib: int | None = None
    utilization_percent: int | None = None


class ComfyUIServerInfo(_Entry):
    url: str
    reachable: bool
    version: str | None = None
    models: dict[str, int] = Field(default_factory=dict, description="How many files per model folder.")
    error: str | None = None


class Environment(_Entry):
    detected_at: datetime
    gpus: list[GpuInfo] = Field(default_factory=list)
    driver_version: str | None = None
    cuda_version: str | None = None
    gpu_problem: str | None = Field(default=None, description="Why no GPU was found, in plain words.")
    disk_free_gb: float | None = None
    disk_total_gb: float | None = None
    comfyui: list[ComfyUIServerInfo] = Field(default_factory=list)
    provider_keys: dict[str, bool] = Field(default_factory=dict)
    platform: str = ""


def _m001_kept_as_written(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "kept_as_written": raw.get("kept_as_written", [])}


class StudioInventory(Document):
    """``grimoire/.state/studio.json``, rendered as ``grimoire/studio.md``."""

    SCHEMA_VERSION: ClassVar[int] = 2
    MIGRATIONS: ClassVar[dict[int, Migration]] = {1: _m001_kept_as_written}

    schema_version: int = 2
    environment: Environment | None = None
    models: list[ModelEntry] = Field(default_factory=list)
    loras: list[LoraEntry] = Field(default_factory=list)
    workflows: list[WorkflowEntry] = Field(default_factory=list)
    instances: list[InstanceEntry] = Field(default_factory=list)
    kept_as_written: list[str] = Field(
        default_factory=list, description="Lines of studio.md that could not be read, exactly as the artist wrote them."
    )
