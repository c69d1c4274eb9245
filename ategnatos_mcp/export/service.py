"""``AssetExporter``: turn one approved image into the files a spec or a custom size asks for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import anyio

from ategnatos_mcp.errors import AtegnatosError, InvalidRequestError
from ategnatos_mcp.export.models import CropMode, ExportedFile, ExportRequest, ExportResult, ExportTarget
from ategnatos_mcp.export.specs import find_spec, load_specs
from ategnatos_mcp.export.writer import write_new_file
from ategnatos_mcp.paths import safe_name

__all__ = ["AssetExporter", "Upscaler", "plan_targets", "preview"]

Upscaler = Callable[[Path, float], Awaitable[Path]]
"""Enlarge the image at a path by at least the factor and return the new file (e.g. a ComfyUI upscale model)."""


class AssetExporter:
    """Exports into ``exports_dir``.

    Without an ``upscaler`` a source smaller than the target is enlarged with Lanczos; give one (for
    instance the ComfyUI upscale template) to enlarge it with a model first.
    """

    def __init__(self, exports_dir: Path, *, upscaler: Upscaler | None = None) -> None:
        self._dir = exports_dir
        self._upscaler = upscaler

    async def export(self, request: ExportRequest) -> ExportResult:
        """Render, encode and write every file of the request; nothing is written if any file fails.

        Raises:
            InvalidRequestError: neither a spec nor a size, an unusable colour, or a budget that cannot be met.
            NotFoundError: an unknown spec name.
        """
        # start-up: the pipeline loads Pillow (+17 ms after the server's own imports), needed only when exporting
        from ategnatos_mcp.export import pipeline

        targets, crop, dpi = plan_targets(request)
        stem = safe_name(request.name, what="export name") if request.name else _stem(request.source)
        source, notes, model_factor = request.source, [], None
        if self._upscaler is not None:
            size = await anyio.to_thread.run_sync(pipeline.read_size, source)
            factor = max(_scale(size, target, crop) for target in targets)
            if factor > 1.0:
                try:
                    source = await self._upscaler(source, factor)
                except AtegnatosError as exc:
                    notes.append(f"The upscaler was not used ({exc.message}); enlarged with Lanczos instead.")
                else:
                    model_factor = round(factor, 2)
                    notes.append(f"Enlarged with the upscale model before resizing (needed {model_factor}x).")
        outcome = await anyio.to_thread.run_sync(
            partial(
                pipeline.render_targets,
                source,
                targets,
                crop=crop,
                anchor=request.anchor,
                quality=request.quality,
                max_bytes=request.max_bytes or (find_spec(request.spec).max_bytes if request.spec else None),
                keep_metadata=request.keep_metadata,
                background=request.background,
                dpi=dpi,
                after_model=model_factor is not None,
            )
        )
        files: list[ExportedFile] = []
        for item in outcome.files:
            name = f"{stem}-{item.target.label}"
            path = await anyio.to_thread.run_sync(write_new_file, self._dir, name, item.extension, item.encoded.data)
            files.append(
                ExportedFile(
                    path=str(path),
                    label=item.target.label,
                    format="ico" if item.extension == ".ico" else item.target.format,
                    width=item.width,
                    height=item.height,
                    bytes=len(item.encoded.data),
                    quality=item.encoded.quality,
                    ico_sizes=list(item.target.ico_sizes),
                )
            )
        return ExportResult(
            source=str(request.source),
            spec=find_spec(request.spec).name if request.spec else None,
            files=files,
            colour=outcome.colour,
            metadata="kept" if request.keep_metadata else "stripped",
            upscaled_by=model_factor or outcome.upscaled_by,
            warnings=[*notes, *outcome.warnings],
        )


_PREVIEW_MAX_PIXELS = 64_000_000  # a bigger export (a 16k print) would take seconds and a gigabyte to preview


async def preview(file: ExportedFile, *, max_side: int = 384) -> bytes | None:
    """A small JPEG preview of an exported file (None for .ico files and very large exports)."""
    if file.format == "ico" or file.width * file.height > _PREVIEW_MAX_PIXELS:
        return None
    from ategnatos_mcp.export import pipeline  # start-up: Pillow, as in AssetExporter.export

    return await anyio.to_thread.run_sync(pipeline.preview_jpeg, Path(file.path), max_side)


def plan_targets(request: ExportRequest) -> tuple[list[ExportTarget], CropMode, int | None]:
    """The files a request asks for, the crop mode and the dpi to write.

    Raises:
        InvalidRequestError: both or neither of a spec and a custom size.
        NotFoundError: an unknown spec name.
    """
    if request.spec:
        if request.width or request.height:
            raise InvalidRequestError(
                "Give either a spec or a custom width/height, not both.",
                hint="Drop width/height to use the spec, or drop the spec for a custom size.",
            )
        spec = find_spec(request.spec)
        targets = [
            ExportTarget(
                label=s.label, width=s.width, height=s.height, format=request.format or s.format or spec.format
            )
            for s in spec.sizes
        ]
        if spec.ico_sizes:
            side = max(spec.ico_sizes)
            targets.append(ExportTarget(label="favicon", width=side, height=side, ico_sizes=tuple(spec.ico_sizes)))
        return targets, request.crop or spec.crop, request.dpi or spec.dpi
    if not (request.width or request.height):
        names = ", ".join(spec.name for spec in load_specs().specs)
        raise InvalidRequestError(
            "Tell me what size to export.",
            hint=f"Name a spec ({names}) or give width and/or height in pixels.",
        )
    crop: CropMode = request.crop or ("fill" if request.width and request.height else "fit")
    if not (request.width and request.height):
        crop = "fit"  # one open side: the other follows the picture's proportions
    label = f"{request.width or 'auto'}x{request.height or 'auto'}"
    target = ExportTarget(label=label, width=request.width, height=request.height, format=request.format or "png")
    return [target], crop, request.dpi


def _stem(source: Path) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in source.stem).strip("-")
    return cleaned or "export"


def _scale(size: tuple[int, int], target: ExportTarget, crop: CropMode) -> float:
    ratios = [r for r in (target.width and target.width / size[0], target.height and target.height / size[1]) if r]
    if not ratios:
        return 1.0
    return max(ratios) if crop == "fill" else min(ratios)
