"""Models of training execution: hosts, supervisor status, parsed progress, run handles."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ategnatos_mcp.state import Document

__all__ = [
    "CheckpointInfo",
    "Diagnosis",
    "ExecutionState",
    "HostSpec",
    "RunHandle",
    "RunKind",
    "SupervisorState",
    "SupervisorStatus",
    "TrainingProgress",
    "UploadProgress",
]

SupervisorState = Literal["starting", "running", "retrying", "succeeded", "failed", "stopped", "lost", "missing"]
RunKind = Literal["dry_run", "training"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostSpec(_Strict):
    """Where a run executes: ``local`` (this machine) or an SSH host. ``identity`` is what the gates record."""

    kind: Literal["local", "ssh"] = "local"
    host: str | None = None
    port: int = 22
    username: str = "root"
    name: str = Field(default="", description="Stable name, e.g. 'runpod:abc123'; default host:port.")

    @property
    def identity(self) -> str:
        if self.kind == "local":
            return "local"
        return self.name or f"{self.host}:{self.port}"


class SupervisorStatus(BaseModel):
    """The supervisor's status.json, read back (unknown keys from newer supervisors are kept out)."""

    model_config = ConfigDict(extra="ignore")

    state: SupervisorState = "missing"
    backend: str | None = None
    attempt: int = 0
    batch_size: int | None = None
    gradient_accumulation: int | None = None
    step: int = 0
    total_steps: int | None = None
    epoch: int | None = None
    total_epochs: int | None = None
    loss: str | None = None
    last_checkpoint: str | None = None
    checkpoints: list[dict[str, object]] = Field(default_factory=list)
    pid: int | None = None
    child_pid: int | None = None
    exit_code: int | None = None
    error_signature: str | None = None
    message: str = ""
    attempts: list[dict[str, object]] = Field(default_factory=list)
    started_at: str | None = None
    updated_at: str | None = None
    last_output_at: str | None = Field(default=None, description="When the trainer last printed anything (host clock).")
    last_step_at: str | None = Field(default=None, description="When the step count last moved (host clock).")
    rung: int = Field(default=0, description="How many memory savers the out-of-memory ladder has switched on.")
    savers: list[str] = Field(default_factory=list, description="Those memory savers, in plain words, in order.")
    saver_overrides: dict[str, object] = Field(
        default_factory=dict, description="The standard-config settings those savers amount to (for a new plan)."
    )
    memory_exhausted: bool = Field(
        default=False, description="It ran out of graphics memory with nothing left to try (batch 1, every saver)."
    )

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed", "stopped", "lost")


class Diagnosis(BaseModel):
    """An error signature found in the log, in plain words."""

    id: str
    line: str
    meaning: str
    fix: str


class CheckpointInfo(BaseModel):
    """One saved LoRA file and what it is: which epoch and step it carries."""

    file: str
    kind: Literal["epoch", "step", "final"]
    epoch: int | None = None
    step: int | None = None


class TrainingProgress(BaseModel):
    """What the log says: where the run is, the loss, the saves, the errors."""

    backend: str
    step: int = 0
    total_steps: int | None = None
    epoch: int | None = None
    total_epochs: int | None = None
    loss: float | None = None
    loss_is_nan: bool = False
    checkpoints: list[CheckpointInfo] = Field(default_factory=list)
    samples_at_steps: list[int] = Field(default_factory=list)
    completed: bool = False
    elapsed_seconds: float | None = Field(default=None, description="The progress bar's elapsed time.")
    eta_seconds: float | None = Field(default=None, description="The progress bar's own estimate of the time left.")
    seconds_per_step: float | None = Field(default=None, description="The progress bar's rate, as seconds per step.")
    errors: list[Diagnosis] = Field(default_factory=list)
    resume: str = Field(default="", description="Honest word on where a restart would begin.")


class RunHandle(_Strict):
    """A started dry run or training run: enough to re-attach from any later session."""

    kind: RunKind
    host: HostSpec
    backend: str
    config_hash: str
    run_dir: str = Field(description="Supervisor folder on the host (status.json, train.log, spec.json).")
    output_dir: str
    process_name: str
    job_name: str | None = Field(default=None, description="ai-toolkit's config.name (its progress bar's label).")
    started_at: datetime
    finished: bool = False
    final_state: SupervisorState | None = None
    resumed_from_step: int | None = Field(default=None, description="Set when this run continued an earlier one.")
    resumed_from: str | None = Field(default=None, description="The saved state or checkpoint it continued from.")
    batch_size: int | None = Field(default=None, description="The batch size it runs at (after any OOM halving).")
    gradient_accumulation: int | None = Field(default=None, description="Its gradient accumulation (same).")
    memory_savers: list[str] = Field(
        default_factory=list, description="Memory savers the out-of-memory ladder switched on, in order."
    )
    samples_seen: list[str] = Field(default_factory=list, description="Sample images already reported (file names).")


class ExecutionState(Document):
    """``grimoire/.state/training+{name}+runs.json``: the runs started for one training plan."""

    SCHEMA_VERSION: ClassVar[int] = 1

    name: str = ""
    backend_dirs: dict[str, str] = Field(default_factory=dict, description="host identity -> backend folder.")
    dry_run: RunHandle | None = None
    training: RunHandle | None = None
    history: list[RunHandle] = Field(default_factory=list)


class UploadProgress(BaseModel):
    """How far a background dataset upload (gate 3) has got."""

    host: str
    state: Literal["sending", "checking", "done", "failed"] = "sending"
    sent_bytes: int = 0
    total_bytes: int | None = Field(default=None, description="Bytes to send (only new or changed files travel).")
    started_at: datetime
    message: str = ""

    def describe(self) -> str:
        """The progress in plain words, e.g. '12.5 of 40.0 MB (31%)'."""
        if self.state == "checking":
            return "all files arrived; checking the environment now"
        if not self.total_bytes:
            return "comparing the files already there"
        share = 100 * self.sent_bytes / self.total_bytes
        return f"{self.sent_bytes / 1e6:.1f} of {self.total_bytes / 1e6:.1f} MB sent ({share:.0f}%)"
