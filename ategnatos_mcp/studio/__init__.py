"""The studio inventory and environment detection.

The inventory document has one owner, ``studio.book``: read it with ``await read_studio(store)``, change it with
``register_in_studio``, ``record_environment``, ``mirror_instances`` or ``accept_studio_edit``.
"""

from ategnatos_mcp.state import View
from ategnatos_mcp.studio.book import (
    StudioChange,
    accept_studio_edit,
    mirror_instances,
    read_studio,
    record_environment,
    register_in_studio,
)
from ategnatos_mcp.studio.detect import (
    GpuReport,
    describe_environment,
    detect_environment,
    detect_gpus,
    parse_gpu_csv,
    server_info,
)
from ategnatos_mcp.studio.inventory import EntryKind, RegisterAction, register_entry
from ategnatos_mcp.studio.learn import LearnedModel, ModelSource, learn_models
from ategnatos_mcp.studio.models import (
    STUDIO_DOCUMENT,
    ComfyUIServerInfo,
    Environment,
    GpuInfo,
    InstanceEntry,
    LoraEntry,
    LoraProvenance,
    ModelEntry,
    ModelKind,
    StudioInventory,
    WorkflowEntry,
)
from ategnatos_mcp.studio.view import STUDIO_VIEW_FILE, merge_studio, parse_studio, render_studio

STUDIO_VIEW: View[StudioInventory] = View(
    filename=STUDIO_VIEW_FILE,
    render=render_studio,
    parse=parse_studio,
    merge=merge_studio,
    model=StudioInventory,
    accept_with="studio_register action 'accept_edit'",
)

__all__ = [
    "STUDIO_DOCUMENT",
    "STUDIO_VIEW",
    "EntryKind",
    "GpuReport",
    "LearnedModel",
    "ModelSource",
    "RegisterAction",
    "describe_environment",
    "detect_environment",
    "detect_gpus",
    "learn_models",
    "merge_studio",
    "parse_gpu_csv",
    "parse_studio",
    "server_info",
    "StudioChange",
    "accept_studio_edit",
    "mirror_instances",
    "read_studio",
    "record_environment",
    "register_in_studio",
    "register_entry",
    "render_studio",
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
