"""The studio inventory and environment detection.

Read it with ``await store.read(STUDIO_DOCUMENT, StudioInventory)``; change it inside
``async with store.update(STUDIO_DOCUMENT, StudioInventory) as upd:``.
"""

from ategnatos_mcp.studio.models import (
    STUDIO_DOCUMENT,
    ComfyUIServerInfo,
    Environment,
    GpuInfo,
    InstanceEntry,
    LoraEntry,
    ModelEntry,
    ModelKind,
    StudioInventory,
    WorkflowEntry,
)

__all__ = [
    "STUDIO_DOCUMENT",
    "ComfyUIServerInfo",
    "Environment",
    "GpuInfo",
    "InstanceEntry",
    "LoraEntry",
    "ModelEntry",
    "ModelKind",
    "StudioInventory",
    "WorkflowEntry",
]
