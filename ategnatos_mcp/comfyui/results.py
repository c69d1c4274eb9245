"""Save a job's outputs full-size under ``workspace/outputs/`` with a provenance sidecar, and make previews.

Previews are downscaled JPEGs that together stay within a byte budget, so an answer with many images
still fits an MCP client's limits. Pillow is imported lazily and runs in a worker thread.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from ategnatos_mcp.comfyui.client import ComfyUIClient
from ategnatos_mcp.comfyui.models import JobRecord, OutputFile, SavedOutput
from ategnatos_mcp.errors import AtegnatosError

__all__ = ["make_previews", "save_outputs"]

_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
_KIND_BY_EXT = {".gif": "gif", ".mp4": "video", ".webm": "video", ".mov": "video", ".wav": "audio", ".mp3": "audio"}
_KIND_BY_EXT.update({".flac": "audio", ".ogg": "audio"})


def _kind(filename: str) -> str:
    ext = Path(filename).suffix.lower()
    return "image" if ext in _IMAGE_EXT else _KIND_BY_EXT.get(ext, "file")


def _image_size(data: bytes) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (UnidentifiedImageError, OSError):
        return None


async def save_outputs(
    record: JobRecord,
    client: ComfyUIClient,
    outputs_dir: Path,
    *,
    workflow: dict[str, Any],
    preview_max_side: int = 768,
    preview_budget_bytes: int = 1_000_000,
) -> tuple[list[SavedOutput], list[tuple[bytes, str]]]:
    """Download every output file of a finished job (all at once), record where each came from, and make
    its previews from the bytes in hand (one worker-thread trip for all of it)."""
    day = datetime.fromtimestamp(record.finished_at or record.submitted_at, UTC).strftime("%Y-%m-%d")
    folder = outputs_dir / day
    wanted = [(node_id, file) for node_id, files in record.outputs.items() for file in files]
    fetched: dict[int, tuple[bytes, str]] = {}
    failures: list[AtegnatosError] = []

    async def fetch(index: int, file: OutputFile) -> None:
        try:
            fetched[index] = await client.view(file)
        except AtegnatosError as exc:  # kept, so the caller gets the error itself, not an ExceptionGroup
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        for index, (_, file) in enumerate(wanted):
            tg.start_soon(fetch, index, file)
    if failures:
        raise failures[0]
    items = []
    for index, (node_id, file) in enumerate(wanted):
        data, content_type = fetched[index]
        target = folder / f"{record.job_id}_{node_id}_{Path(file.filename).name}"
        provenance = {
            "job_id": record.job_id,
            "server": record.server,
            "prompt_id": record.prompt_id,
            "node_id": node_id,
            "comfyui_file": file.model_dump(),
            "content_type": content_type,
            "template": record.template,
            "params": record.params,
            "seed": record.seed,
            "timings": {
                "submitted_at": record.submitted_at,
                "started_at": record.started_at,
                "finished_at": record.finished_at,
            },
            "cached_nodes": record.cached_nodes,
            "workflow": workflow,
        }
        items.append((node_id, target, data, json.dumps(provenance, indent=1)))
    return await anyio.to_thread.run_sync(_write_all, items, preview_max_side, preview_budget_bytes)


def _write_all(
    items: list[tuple[str, Path, bytes, str]], max_side: int, budget: int
) -> tuple[list[SavedOutput], list[tuple[bytes, str]]]:
    saved = []
    for node_id, target, data, provenance in items:
        kind = _kind(target.name)
        size = _image_size(data) if kind == "image" else None
        sidecar = target.with_name(target.name + ".json")
        target.parent.mkdir(parents=True, exist_ok=True)
        _replace(target, data)
        _replace(sidecar, provenance.encode("utf-8"))
        saved.append(
            SavedOutput(
                node_id=node_id,
                kind=kind,
                path=str(target),
                sidecar=str(sidecar),
                width=size[0] if size else None,
                height=size[1] if size else None,
            )
        )
    sources = {str(target): data for _, target, data, _ in items}
    return saved, _previews(saved, max_side, budget, sources)


def _replace(path: Path, data: bytes) -> None:
    # Temp file + rename so no reader sees a half-written picture. No fsync: outputs can be fetched
    # again from ComfyUI, and fsync per file doubled the cost of a fast job.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def make_previews(saved: list[SavedOutput], *, max_side: int, budget_bytes: int) -> list[tuple[bytes, str]]:
    """Downscaled JPEG previews of the saved images, all together within ``budget_bytes``.

    Marks each included output ``previewed``; images that would not fit are left out (their files are named).
    """
    return await anyio.to_thread.run_sync(_previews, saved, max_side, budget_bytes)


def _previews(
    saved: list[SavedOutput], max_side: int, budget: int, sources: dict[str, bytes] | None = None
) -> list[tuple[bytes, str]]:
    from PIL import Image, UnidentifiedImageError

    sources = sources or {}

    images = [s for s in saved if s.kind == "image"]
    out: list[tuple[bytes, str]] = []
    remaining = budget
    for index, item in enumerate(images):
        share = remaining // (len(images) - index)
        try:
            source = io.BytesIO(sources[item.path]) if item.path in sources else item.path
            with Image.open(source) as img:
                img.load()
                data = _fit(img, max_side, share)
        except (UnidentifiedImageError, OSError):
            continue
        if data is None:
            continue
        item.previewed = True
        remaining -= len(data)
        out.append((data, "image/jpeg"))
    return out


def _fit(img: Any, max_side: int, limit: int) -> bytes | None:
    """Shrink and recompress until the JPEG fits ``limit`` bytes (None when even a tiny one does not)."""
    rgb = img.convert("RGB")
    side = max_side
    quality = 85
    while side >= 64:
        copy = rgb.copy()
        copy.thumbnail((side, side))
        buffer = io.BytesIO()
        copy.save(buffer, format="JPEG", quality=quality, optimize=True)
        if buffer.tell() <= limit:
            return buffer.getvalue()
        if quality > 60:
            quality -= 15
        else:
            side = int(side * 0.7)
    return None
