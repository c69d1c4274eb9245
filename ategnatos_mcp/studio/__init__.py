"""The studio inventory and environment detection.

Read it with ``await store.read(STUDIO_DOCUMENT, StudioInventory)``; change it inside
``async with store.update(STUDIO_DOCUMENT, StudioInventory) as upd:``.
"""

from ategnatos_mcp.state import View
from ategnatos_mcp.studio.detect import (
    GpuReport,
    describe_environment,
    detect_environment,
    detect_gpus,
    parse_gpu_csv,
    probe_comfyui,
)
from ategnatos_mcp.studio.inventory import EntryKind, RegisterAction, register_entry
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
from ategnatos_mcp.studio.view import STUDIO_VIEW_FILE, parse_studio, render_studio

STUDIO_VIEW: View[StudioInventory] = View(filename=STUDIO_VIEW_FILE, render=render_studio, parse=parse_studio)

__all__ = [
    "STUDIO_DOCUMENT",
    "STUDIO_VIEW",
    "EntryKind",
    "GpuReport",
    "RegisterAction",
    "describe_environment",
    "detect_environment",
    "detect_gpus",
    "parse_gpu_csv",
    "parse_studio",
    "probe_comfyui",
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
