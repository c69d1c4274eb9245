"""What the remote package hands back: hosts, command results, detached-process status, transfer and step reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CommandResult",
    "DetachedState",
    "DetachedStatus",
    "KeyInfo",
    "LogChunk",
    "OutputCallback",
    "RemoteHost",
    "STEP_NAME_PATTERN",
    "Step",
    "StepOutcome",
    "StepReport",
    "SyncReport",
    "TransferReport",
]

"""``async (progress, total, message)``: the shape of ``tools._common.progress_reporter``."""

OutputCallback = Callable[[str, str], Awaitable[None]]
"""``async (stream, text)`` with stream ``"stdout"`` or ``"stderr"``: called as output arrives."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RemoteHost(_Model):
    """Where to reach a GPU host. Re-read host and port from the provider before each session: they change."""

    host: str
    port: int = Field(default=22, ge=1, le=65535)
    username: str = "root"
    name: str = Field(
        default="",
        description="Stable identity for the pinned host key (e.g. 'runpod:abc123'); default 'host:port'.",
    )

    @property
    def identity(self) -> str:
        return self.name or f"{self.host}:{self.port}"


class KeyInfo(_Model):
    """Our SSH key: where the private half lives and the public line to register with a provider."""

    private_key_path: Path
    public_key: str = Field(description="One OpenSSH line, 'ssh-ed25519 AAAA... ategnatos'.")
    fingerprint: str


class CommandResult(_Model):
    """A finished remote command."""

    command: str
    exit_status: int | None
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


DetachedState = Literal["running", "finished", "failed", "stopped", "lost", "missing"]


class DetachedStatus(_Model):
    """A detached process read back from its run folder on the host.

    ``finished`` exited 0, ``failed`` exited non-zero, ``stopped`` was stopped by us, ``lost`` died without
    recording an exit (host rebooted, killed from outside), ``missing`` has no run folder.
    """

    name: str
    state: DetachedState
    pid: int | None = None
    exit_status: int | None = None
    run_dir: str
    log_path: str
    log_size: int = 0

    @property
    def running(self) -> bool:
        return self.state == "running"


class LogChunk(_Model):
    """A piece of a detached process's log; pass ``next_offset`` back to read on from there."""

    text: str
    offset: int
    next_offset: int


class TransferReport(_Model):
    """One verified file transfer."""

    local_path: Path
    remote_path: str
    size: int
    sha256: str
    bytes_sent: int = Field(description="Bytes actually moved; less than size when resumed or already there.")
    resumed_from: list[int] = Field(
        default_factory=list[int], description="Offsets we resumed from: after a cut, or a partial file left earlier."
    )
    skipped: bool = Field(default=False, description="The destination already held this exact file.")


class SyncReport(_Model):
    """A folder sync: only new or changed files were sent."""

    local_dir: Path
    remote_dir: str
    sent: list[str] = Field(default_factory=list[str])
    unchanged: int = 0
    deleted: list[str] = Field(default_factory=list[str])
    bytes_sent: int = 0


STEP_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"
"""Step names become file names on the host: letters, digits, '_', '.', '-'."""


class Step(_Model):
    """One idempotent setup step: a shell command run once per host, remembered by a done-marker.

    ``check`` (optional) is a command that exits 0 when the step's result is already in place; then the
    step is marked done without running. Changing ``command`` makes the step run again.
    """

    name: str = Field(pattern=STEP_NAME_PATTERN)
    command: str
    description: str = ""
    check: str | None = None
    timeout_seconds: float = Field(default=1800.0, gt=0)


StepResult = Literal["done", "skipped", "already_in_place", "failed", "not_run"]


class StepOutcome(_Model):
    name: str
    description: str = ""
    result: StepResult
    seconds: float = 0.0
    exit_status: int | None = None
    output_tail: str = ""


class StepReport(_Model):
    """What ``run_steps`` did, step by step."""

    steps: list[StepOutcome] = Field(default_factory=list[StepOutcome])

    @property
    def ok(self) -> bool:
        return all(step.result in {"done", "skipped", "already_in_place"} for step in self.steps)

    @property
    def ran(self) -> list[str]:
        return [step.name for step in self.steps if step.result == "done"]

    @property
    def skipped(self) -> list[str]:
        return [step.name for step in self.steps if step.result in {"skipped", "already_in_place"}]
