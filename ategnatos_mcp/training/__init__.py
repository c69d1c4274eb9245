"""Training: the standard config, presets, VRAM estimate, backend adapters, the plan and the four gates."""

from ategnatos_mcp.training.backends import BACKENDS, CatalogueError, render_backend
from ategnatos_mcp.training.config import (
    REGULARISATION_NAMES,
    TrainingConfig,
    check_trigger_word,
    is_regularisation_folder,
)
from ategnatos_mcp.training.families import Family, family_names, resolve_family
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
    refuse_if_trained,
    write_records,
)
from ategnatos_mcp.training.models import (
    EnvironmentReport,
    GateState,
    PlanRequest,
    RenderedBackend,
    RunPaths,
    TrainingRunRecord,
)
from ategnatos_mcp.training.plan_records import TrainingPlan
from ategnatos_mcp.training.planner import build_plan
from ategnatos_mcp.training.records import RECORD_FILES, records_dir
from ategnatos_mcp.training.status import GateView, RunStatus, confirm_plan, read_records, run_status
from ategnatos_mcp.training.steps import FolderSteps, StepSummary, step_summary
from ategnatos_mcp.training.versions import (
    Versions,
    find_versions,
    record_training_outcome,
    record_training_started,
    relaunch_refusal,
    series_of,
)
from ategnatos_mcp.training.vram import (
    MemorySaver,
    VramEstimate,
    VramInputs,
    estimate_vram,
    largest_batch,
    savers_in_order,
)

__all__ = [
    "BACKENDS",
    "GATE_LABELS",
    "RECORD_FILES",
    "REGULARISATION_NAMES",
    "CatalogueError",
    "EnvironmentReport",
    "Family",
    "FolderSteps",
    "GateState",
    "GateView",
    "MemorySaver",
    "PlanRequest",
    "RenderedBackend",
    "RunPaths",
    "RunStatus",
    "StepSummary",
    "TrainingConfig",
    "TrainingPlan",
    "TrainingRunRecord",
    "VramEstimate",
    "VramInputs",
    "Versions",
    "build_plan",
    "check_launch_ready",
    "check_trigger_word",
    "confirm_plan",
    "estimate_vram",
    "family_names",
    "find_versions",
    "is_regularisation_folder",
    "largest_batch",
    "launch_blockers",
    "note_dataset_fingerprint",
    "read_gates",
    "read_records",
    "record_confirmation",
    "record_dataset_gate",
    "record_dry_run_gate",
    "record_environment_gate",
    "record_plan",
    "record_training_outcome",
    "record_training_started",
    "records_dir",
    "refuse_if_trained",
    "relaunch_refusal",
    "render_backend",
    "resolve_family",
    "run_status",
    "savers_in_order",
    "series_of",
    "step_summary",
    "write_records",
]
