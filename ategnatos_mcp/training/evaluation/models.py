"""Models of the evaluation: what is compared (saves x weights x prompts), the pictures, the sheet, the LoRA kept."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ategnatos_mcp.state import Document
from ategnatos_mcp.studio import LoraProvenance

__all__ = [
    "SheetCell",
    "EVALUATION_PREFIX",
    "EvalAnswer",
    "EvalCell",
    "EvalImage",
    "EvalRecord",
    "EvalSave",
    "EvalSpec",
    "EvalState",
    "KeptLora",
    "evaluation_document",
]

EVALUATION_PREFIX = "evaluation-"  # no other document name starts so, whatever the run is called
EvalState = Literal["none", "placing", "rendering", "done", "failed"]


def evaluation_document(name: str) -> str:
    return f"{EVALUATION_PREFIX}{name}"


@dataclass
class SheetCell:
    """One cell of the contact sheet: a picture on disk, or the reason there is none."""

    image: Path | None = None
    note: str = ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvalSave(_Strict):
    """One saved LoRA file of the run, as a row of the sheet."""

    file: str = Field(description="The file on the training host.")
    label: str = Field(description="How the sheet names it, e.g. 'epoch 4' or 'final (epoch 5)'.")
    kind: Literal["epoch", "step", "final"]
    epoch: int | None = None
    step: int | None = None
    comfyui_name: str = Field(description="Its name in ComfyUI's LoRA list (a folder of Ategnatos' own).")


class EvalSpec(_Strict):
    """What one sheet compares; its fingerprint tells a repeat call from a new question."""

    saves: list[EvalSave]
    weights: list[float] = Field(description="0 is the base model without the LoRA.")
    prompts: list[str]
    seed: int
    template: str
    models: dict[str, str] = Field(description="Template parameter -> model file ComfyUI lists (base model etc.).")
    settings: dict[str, Any] = Field(default_factory=dict, description="Sampler settings of the family.")
    reference_image: str | None = None

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


class EvalImage(_Strict):
    """One picture of the grid. The weight-0 pictures do not use the LoRA, so one per prompt serves every row."""

    prompt: int
    weight: float
    save: int | None = Field(default=None, description="Index into the saves; None for the weight-0 baseline.")
    job_id: str | None = None
    path: str | None = Field(default=None, description="The picture in workspace/outputs once made.")
    error: str | None = None


class KeptLora(_Strict):
    """A save the artist kept: where it is now and under which studio name."""

    name: str
    path: str
    provenance: LoraProvenance


class EvalRecord(Document):
    """``grimoire/.state/evaluation-{name}.json``: the run's latest sheet and what was kept from it."""

    SCHEMA_VERSION: ClassVar[int] = 1

    name: str = ""
    state: EvalState = "none"
    spec: EvalSpec | None = None
    spec_hash: str = ""
    server: str = ""
    images: list[EvalImage] = Field(default_factory=list)
    sheet: str | None = None
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    kept: list[KeptLora] = Field(default_factory=list)


class EvalCell(BaseModel):
    """A cell of the sheet in the answer."""

    row: str
    weight: float
    prompt: int
    image: str | None = None
    error: str | None = None


class EvalAnswer(BaseModel):
    """train_evaluate's answer: small on purpose (the sheet itself comes as one image)."""

    name: str
    state: EvalState
    server: str = ""
    models: dict[str, str] = Field(default_factory=dict, description="Base model files used in ComfyUI.")
    saves: list[str] = Field(default_factory=list, description="Rows: the saves compared.")
    weights: list[float] = Field(default_factory=list, description="Columns: LoRA weights (0 = without it).")
    prompts: list[str] = Field(default_factory=list)
    seed: int | None = None
    images_done: int = 0
    images_total: int = 0
    sheet: str | None = Field(default=None, description="The contact sheet (full size) under workspace/.")
    cells: list[EvalCell] = Field(default_factory=list)
    kept: KeptLora | None = None
    notes: list[str] = Field(default_factory=list)
    next_step: str = ""
