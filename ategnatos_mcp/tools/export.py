"""MCP adapter for asset export (``asset_export``) and image facts (``image_info``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, cast, get_args

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.export import (
    Anchor,
    CropMode,
    ExportRequest,
    ExportResult,
    ImageFormat,
    find_spec,
    load_specs,
    preview,
)
from ategnatos_mcp.imageinfo import ImageInfo, inspect_image
from ategnatos_mcp.paths import confine
from ategnatos_mcp.tools._common import ImagePart, app_of, guard, respond
from ategnatos_mcp.tools._definitions import add_tool
from ategnatos_mcp.wiring import Wiring

__all__ = ["register"]

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif", "ico": "image/x-icon"}


@guard
async def asset_export(
    ctx: Context[Any, Wiring],
    source: Annotated[
        str | None, Field(description="The image (a path in the project); or give project and asset.")
    ] = None,
    project: Annotated[
        str | None, Field(max_length=200, description="With `asset`: export that asset's approved picture.")
    ] = None,
    asset: Annotated[str | None, Field(max_length=200, description="The asset inside `project`.")] = None,
    version: Annotated[int | None, Field(ge=1, description="Export this version instead of the approved one.")] = None,
    spec: Annotated[
        str | None,
        Field(
            description="A named spec, e.g. og-image, youtube-banner, x-header, favicon (see ategnatos://export/specs)."
        ),
    ] = None,
    width: Annotated[
        int | None, Field(gt=0, le=16384, description="Custom width in pixels (instead of a spec).")
    ] = None,
    height: Annotated[int | None, Field(gt=0, le=16384, description="Custom height in pixels.")] = None,
    format: Annotated[ImageFormat | None, Field(description="png, jpeg, webp or avif; default: the spec's.")] = None,
    crop: Annotated[
        CropMode | None,
        Field(description="fill (crop to the exact size), pad (bars) or fit (may be smaller)."),
    ] = None,
    anchor: Annotated[
        Anchor, Field(description="For fill: around the centre or the most detailed area (attention).")
    ] = "centre",
    max_bytes: Annotated[
        int | None, Field(ge=1024, description="Largest file size; quality is lowered to fit.")
    ] = None,
    quality: Annotated[int | None, Field(ge=1, le=100, description="Starting quality for jpeg/webp/avif.")] = None,
    keep_metadata: Annotated[
        bool, Field(description="Keep EXIF and generation parameters (stripped by default).")
    ] = False,
    background: Annotated[
        str, Field(description="Colour for pad bars and JPEG transparency, or 'transparent'.")
    ] = "#ffffff",
    dpi: Annotated[int | None, Field(gt=0, le=2400, description="Dots per inch written into the file.")] = None,
    name: Annotated[str | None, Field(description="Base file name; default: the source file's name.")] = None,
    upscale: Annotated[
        Literal["auto", "lanczos"],
        Field(description="Too small a source: auto (a ComfyUI upscale model, else Lanczos) or lanczos."),
    ] = "auto",
) -> Annotated[CallToolResult, ExportResult]:
    """Export an image at exact sizes and formats into workspace/exports (never overwriting).

    Give `source`, or `project` + `asset` for its approved picture (`version` for another). Use a named spec
    (banners, headers, thumbnails, favicon set, ...) or width/height; with neither, the asset's own size.
    Colours become sRGB; metadata is stripped unless keep_metadata."""
    app = app_of(ctx)
    settings = app.settings
    notes: list[str] = []
    if source is None:
        if not project or not asset:
            raise InvalidRequestError(
                "Say which image to export.", hint="Pass `source` (a file path), or `project` and `asset`."
            )
        source, it, asset_spec = await (await app.art_director()).assets.version_output(project, asset, version)
        notes.append(f"Source: {project}/{asset} version {it.version} ({Path(source).name}).")
        if spec is None and width is None and height is None and asset_spec.width and asset_spec.height:
            width, height = asset_spec.width, asset_spec.height
            notes.append(f"Size {width}x{height} from the asset's spec.")
            wanted = asset_spec.formats[0].lower().replace("jpg", "jpeg") if asset_spec.formats else ""
            if format is None and wanted in get_args(ImageFormat):
                format = cast(ImageFormat, wanted)
    path = confine(source, home=settings.home, roots=settings.roots, kind="file")
    request = ExportRequest(
        source=path,
        spec=spec,
        width=width,
        height=height,
        format=format,
        crop=crop,
        anchor=anchor,
        max_bytes=max_bytes,
        quality=quality,
        keep_metadata=keep_metadata,
        background=background,
        dpi=dpi,
        name=name,
    )
    result = await app.exporter(upscale=upscale == "auto").export(request)
    lines = [
        f"- {Path(f.path).name}: {f.width}x{f.height} {f.format.upper()}, {f.bytes / 1024:.0f} KB" for f in result.files
    ]
    summary = "\n".join(
        [
            f"Exported {len(result.files)} file(s) to {settings.exports_dir} ({result.colour}; metadata {result.metadata}):"
        ]
        + lines
        + [f"Note: {w}" for w in [*notes, *result.warnings]]
        + ([_spec_line(result.spec)] if result.spec else [])
    )
    links = [(Path(f.path).as_uri(), Path(f.path).name, _MIME.get(f.format)) for f in result.files]
    # One small look at the largest file is enough to check the crop; the rest are linked.
    largest = max(result.files, key=lambda f: f.width * f.height)
    shown = await preview(largest)
    label = f"preview of {Path(largest.path).name} ({largest.width}x{largest.height})"
    images = [ImagePart(data=shown, mime_type="image/jpeg", label=label)] if shown else []
    return respond(result, summary, images=images, links=links)


def _spec_line(name: str) -> str:
    spec = find_spec(name)
    return f"Spec {spec.name}: {spec.description} Sizes from {spec.source}."


@guard
async def image_info(
    path: Annotated[str, Field(description="The image to inspect (a path inside the project).")],
    ctx: Context[Any, Wiring],
    include_raw: Annotated[bool, Field(description="Also return the embedded generation text (long).")] = False,
) -> Annotated[CallToolResult, ImageInfo]:
    """An image's size, format, colour mode and profile, EXIF, and the generation parameters ComfyUI or
    A1111 embedded, so a result can be reproduced or reported."""
    settings = app_of(ctx).settings
    resolved = confine(path, home=settings.home, roots=settings.roots, kind="file")
    info = await inspect_image(resolved, include_raw=include_raw)
    return respond(info, _info_summary(info))


def _info_summary(info: ImageInfo) -> str:
    alpha = " with transparency" if info.has_alpha else ""
    profile = f", colour profile {info.icc_profile}" if info.icc_profile else ""
    parts = [f"{Path(info.path).name}: {info.width}x{info.height} {info.format} ({info.mode}{alpha}{profile})."]
    gen = info.generation
    if gen is None:
        parts.append("No generation parameters are embedded.")
    else:
        tool = "ComfyUI" if gen.source == "comfyui" else "A1111-style"
        parts.append(f"{tool} generation parameters found.")
        if gen.positive_prompt:
            parts.append(f"Prompt: {gen.positive_prompt[:300]}")
        if gen.negative_prompt:
            parts.append(f"Negative: {gen.negative_prompt[:200]}")
        settings = [
            f"{label} {value}"
            for label, value in (("seed", gen.seed), ("steps", gen.steps), ("CFG", gen.cfg), ("sampler", gen.sampler))
            if value is not None
        ]
        if gen.model:
            settings.append(f"model {gen.model}")
        if settings:
            parts.append("Settings: " + ", ".join(settings) + ".")
    return "\n".join(parts)


def register(server: MCPServer[Wiring], app: Wiring) -> None:
    """Register ``asset_export`` and ``image_info`` and the list of export specs."""
    add_tool(
        server, asset_export, name="asset_export", title="Export an image for its use", idempotent=True, open_world=True
    )
    add_tool(
        server, image_info, name="image_info", title="Read an image's size, profile and parameters", read_only=True
    )

    @server.resource(
        "ategnatos://export/specs",
        name="export-specs",
        description="The named export specs (sizes, formats, sources).",
        mime_type="application/json",
    )
    def export_specs() -> str:
        return load_specs().model_dump_json(indent=2)
