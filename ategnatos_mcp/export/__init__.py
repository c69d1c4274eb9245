"""Asset export: named specs (OG image, favicon set, print...) and custom sizes, in the formats the web needs."""

from ategnatos_mcp.export.comfyui_upscale import UPSCALE_TEMPLATE, ComfyUIUpscaler
from ategnatos_mcp.export.models import (
    Anchor,
    AssetSpec,
    CropMode,
    ExportedFile,
    ExportRequest,
    ExportResult,
    ExportTarget,
    ImageFormat,
    SizeTarget,
    SpecCatalog,
)
from ategnatos_mcp.export.service import AssetExporter, Upscaler, plan_targets, preview
from ategnatos_mcp.export.specs import SPECS_FILE, find_spec, load_specs

__all__ = [
    "SPECS_FILE",
    "UPSCALE_TEMPLATE",
    "Anchor",
    "AssetExporter",
    "AssetSpec",
    "ComfyUIUpscaler",
    "CropMode",
    "ExportRequest",
    "ExportResult",
    "ExportTarget",
    "ExportedFile",
    "ImageFormat",
    "SizeTarget",
    "SpecCatalog",
    "Upscaler",
    "find_spec",
    "load_specs",
    "plan_targets",
    "preview",
]
