"""Training execution: gate 3 (environment), gate 4 (dry run), launch under the OOM-recovering supervisor,
monitoring from the log and status file, and the evaluation grid."""

from ategnatos_mcp.training.execution.hosts import HostRegistry, LocalHost, SSHTrainingHost, TrainingHost, resolve_host
from ategnatos_mcp.training.execution.models import (
    CheckpointInfo,
    Diagnosis,
    EvalGrid,
    ExecutionState,
    HostSpec,
    RunHandle,
    SupervisorStatus,
    TrainingProgress,
)
from ategnatos_mcp.training.execution.monitor import checkpoint_info, diagnose, parse_log, resume_note

__all__ = [
    "CheckpointInfo",
    "Diagnosis",
    "EvalGrid",
    "ExecutionState",
    "HostRegistry",
    "HostSpec",
    "LocalHost",
    "RunHandle",
    "SSHTrainingHost",
    "SupervisorStatus",
    "TrainingHost",
    "TrainingProgress",
    "checkpoint_info",
    "diagnose",
    "parse_log",
    "resume_note",
    "resolve_host",
]
