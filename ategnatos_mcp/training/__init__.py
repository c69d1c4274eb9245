"""Training: the standard config, presets, VRAM estimate, backend adapters and the four gates."""

from ategnatos_mcp.training.gates import (
    GATE_LABELS,
    check_launch_ready,
    launch_blockers,
    note_dataset_fingerprint,
    read_gates,
    record_confirmation,
    record_dataset_gate,
    record_dry_run_gate,
    record_environment_gate,
    record_plan,
)
from ategnatos_mcp.training.models import EnvironmentReport, GateState

__all__ = [
    "GATE_LABELS",
    "EnvironmentReport",
    "GateState",
    "check_launch_ready",
    "launch_blockers",
    "note_dataset_fingerprint",
    "read_gates",
    "record_confirmation",
    "record_dataset_gate",
    "record_dry_run_gate",
    "record_environment_gate",
    "record_plan",
]
