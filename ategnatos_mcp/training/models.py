"""Pydantic models of the training domain: the gate state document and the records it points to."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ategnatos_mcp.state import Document

__all__ = [
    "BackendName",
    "RenderedBackend",
    "RunPaths",
    "ConfirmationGate",
    "DatasetGate",
    "DryRunGate",
    "EnvironmentGate",
    "EnvironmentReport",
    "GateState",
    "GateStatus",
    "PlanRequest",
    "TrainingOutcome",
    "TrainingRunRecord",
]

GateStatus = Literal["open", "pending", "passed", "failed"]  # pending: being checked in the background


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetGate(_Strict):
    """Gate 1: a GO dataset report for one exact dataset (its fingerprint)."""

    status: GateStatus = "open"
    dataset_path: str | None = None
    fingerprint: str | None = None
    reasons: list[str] = Field(default_factory=list)
    recorded_at: datetime | None = None


class ConfirmationGate(_Strict):
    """Gate 2: the user confirmed one exact configuration (its hash)."""

    status: GateStatus = "open"
    config_hash: str | None = None
    method: Literal["elicitation", "explicit"] | None = None
    recorded_at: datetime | None = None


class EnvironmentGate(_Strict):
    """Gate 3: the training environment on one host was checked."""

    status: GateStatus = "open"
    host: str | None = None
    problems: list[str] = Field(default_factory=list)
    recorded_at: datetime | None = None


class DryRunGate(_Strict):
    """Gate 4: a short dry run of one configuration passed on one host."""

    status: GateStatus = "open"
    host: str | None = None
    config_hash: str | None = None
    log_tail: str = ""
    recorded_at: datetime | None = None


class EnvironmentReport(_Strict):
    """What the environment check (gate 3) found on a host; ``markdown`` becomes environment.md."""

    passed: bool
    pending: bool = Field(default=False, description="Not checked yet: the dataset is still being sent.")
    problems: list[str] = Field(default_factory=list, description="Plain-language reasons it is not ready.")
    facts: dict[str, str] = Field(default_factory=dict, description="GPU, VRAM, driver, CUDA, backend version...")
    markdown: str = ""


TrainingOutcome = Literal["running", "succeeded", "failed", "stopped", "lost"]


class TrainingRunRecord(_Strict):
    """The training run a version launched. Once there is one, the version is never launched again from step 0:
    a stopped or failed run may only be resumed; training again makes a new version.
    """

    state: TrainingOutcome = Field(default="running", description="As of the last look (training_status).")
    host: str
    config_hash: str
    started_at: datetime
    ended_at: datetime | None = None
    message: str = ""
    step: int = 0
    total_steps: int | None = None
    resume_from_step: int | None = Field(default=None, description="The step a resume would continue from.")
    resumes: int = Field(default=0, description="How many times it was resumed.")


class GateState(Document):
    """Machine-readable state of one training run's four gates (``grimoire/.state/training+{name}.json``).

    ``planned_config_hash`` is the hash of the newest plan; ``notices`` says which gates were reset and why.
    """

    SCHEMA_VERSION: ClassVar[int] = 1

    name: str = ""
    planned_config_hash: str | None = None
    planned_config: dict[str, Any] | None = Field(default=None, description="The standard config of the newest plan.")
    backend: str | None = None
    dataset: DatasetGate = Field(default_factory=DatasetGate)
    confirmation: ConfirmationGate = Field(default_factory=ConfirmationGate)
    environment: EnvironmentGate = Field(default_factory=EnvironmentGate)
    dry_run: DryRunGate = Field(default_factory=DryRunGate)
    notices: list[str] = Field(default_factory=list)
    record_hashes: dict[str, str] = Field(default_factory=dict, description="sha256 of each record as last written.")
    training_run: TrainingRunRecord | None = Field(
        default=None, description="The training run launched for this version (its gates are kept as they were)."
    )
    version_of: str | None = Field(default=None, description="The trained run this one is a new version of.")
    plan_request: dict[str, Any] | None = Field(default=None, description="The newest train_plan arguments.")


BackendName = Literal["kohya", "simpletuner", "ai-toolkit"]

# Gate 4 runs the trainer for a few steps and one save (the seed's dry run: 2-5 steps).
DRY_RUN_STEPS = 3
DRY_RUN_STEP_RANGE = (2, 5)


class RunPaths(_Strict):
    """Where a run's files live on the machine that trains (local folders, or a remote host's)."""

    dataset_dir: str
    config_dir: str
    output_dir: str


class RenderedBackend(_Strict):
    """One backend's files for a config, and the exact command that starts it."""

    backend: BackendName
    dry_run: bool = False
    files: dict[str, str] = Field(description="File name (inside config_dir) -> content.")
    command: list[str] = Field(description="argv of the launch command.")
    command_line: str = Field(description="The same command, shell-quoted.")
    workdir: str = Field(description="Where to run the command.")
    notes: list[str] = Field(default_factory=list, description="Settings this backend cannot express, and quirks.")


class PlanRequest(_Strict):
    """What the artist asked for; anything left empty comes from the preset."""

    name: str
    intent: str = ""
    dataset_path: str
    training_type: Literal["character", "style", "concept", "object"] = "character"
    family: str | None = None
    base_model: str | None = None
    trigger_word: str | None = None
    preset: Literal["quick", "standard", "thorough"] = "standard"
    backend: BackendName | None = None
    gpu_vram_gb: float | None = None
    sample_prompts: list[str] = Field(default_factory=list)
    overrides: dict[str, object] = Field(default_factory=dict)
