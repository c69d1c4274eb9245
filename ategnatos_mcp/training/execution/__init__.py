"""Training execution: gate 3 (environment), gate 4 (dry run), launch under the OOM-recovering supervisor,
monitoring from the host's status file and log (sample images included). The evaluation of a finished run lives
in ``training/evaluation``.

``TrainingRuns`` (service.py) is the entry point the MCP tools use; one method per step. Runs execute on a
``TrainingHost``: ``local`` (subprocesses) or SSH (``remote`` package), opened by a ``HostRegistry``.
``supervisor_script.py`` is standard-library only and is copied to the host, where it runs detached.
"""

from ategnatos_mcp.training.execution.dryrun import DryRunResult, judge_dry_run
from ategnatos_mcp.training.execution.environment import EnvironmentCheck
from ategnatos_mcp.training.execution.hosts import HostRegistry, LocalHost, SSHTrainingHost, TrainingHost, resolve_host
from ategnatos_mcp.training.execution.launch import LaunchResult
from ategnatos_mcp.training.execution.models import (
    CheckpointInfo,
    Diagnosis,
    ExecutionState,
    HostSpec,
    RunHandle,
    SupervisorStatus,
    TrainingProgress,
)
from ategnatos_mcp.training.execution.monitor import checkpoint_info, diagnose, parse_log, resume_note
from ategnatos_mcp.training.execution.samples import (
    SampleImage,
    SamplePreview,
    SampleSet,
    parse_sample_name,
    sample_folder,
)
from ategnatos_mcp.training.execution.service import TrainingRuns
from ategnatos_mcp.training.execution.tracking import RunReport

__all__ = [
    "CheckpointInfo",
    "Diagnosis",
    "DryRunResult",
    "EnvironmentCheck",
    "ExecutionState",
    "HostRegistry",
    "HostSpec",
    "LaunchResult",
    "LocalHost",
    "RunHandle",
    "RunReport",
    "SSHTrainingHost",
    "SampleImage",
    "SamplePreview",
    "SampleSet",
    "SupervisorStatus",
    "TrainingHost",
    "TrainingProgress",
    "TrainingRuns",
    "checkpoint_info",
    "diagnose",
    "judge_dry_run",
    "parse_log",
    "parse_sample_name",
    "resolve_host",
    "resume_note",
    "sample_folder",
]
