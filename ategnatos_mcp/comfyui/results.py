"""Save a job's outputs full-size under ``workspace/outputs/`` with a provenance sidecar, and make previews.

Previews are downscaled JPEGs that together stay within a byte budget, so an answer with many images
still fits an MCP client's limits. Pillow is imported lazily and runs in a worker thread.
"""

from __future__ import annotations

import io
import json
import mimetypes
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from ategnatos_mcp.comfyui.client import ComfyUIClient
from ategnatos_mcp.comfyui.models import JobRecord, SavedOutput
from ategnatos_mcp.state import write_bytes_atomic, write_text_atomic

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
    record: JobRecord, client: ComfyUIClient, outputs_dir: Path, *, workflow: dict[str, Any]
) -> list[SavedOutput]:
    """Download every output file of a finished job and record where it came from."""
    day = datetime.fromtimestamp(record.finished_at or record.submitted_at, UTC).strftime("%Y-%m-%d")
    folder = outputs_dir / day
    saved: list[SavedOutput] = []
    for node_id, files in record.outputs.items():
        for file in files:
            data, content_type = await client.view(file)
            target = folder / f"{record.job_id}_{node_id}_{Path(file.filename).name}"
            kind = _kind(file.filename)
            size = await anyio.to_thread.run_sync(_image_size, data) if kind == "image" else None
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
            sidecar = target.with_name(target.name + ".json")
            await anyio.to_thread.run_sync(_write_pair, target, data, sidecar, json.dumps(provenance, indent=2))
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
    return saved


def _write_pair(target: Path, data: bytes, sidecar: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(target, data)
    write_text_atomic(sidecar, text)


async def make_previews(saved: list[SavedOutput], *, max_side: int, budget_bytes: int) -> list[tuple[bytes, str]]:
    """Downscaled JPEG previews of the saved images, all together within ``budget_bytes``.

    Marks each included output ``previewed``; images that would not fit are left out (their files are named).
    """
    return await anyio.to_thread.run_sync(_previews, saved, max_side, budget_bytes)


def _previews(saved: list[SavedOutput], max_side: int, budget: int) -> list[tuple[bytes, str]]:
    from PIL import Image, UnidentifiedImageError

    images = [s for s in saved if s.kind == "image"]
    out: list[tuple[bytes, str]] = []
    remaining = budget
    for index, item in enumerate(images):
        share = remaining // (len(images) - index)
        try:
            with Image.open(item.path) as img:
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


def guess_mime(path: str) -> str | None:
    return mimetypes.guess_type(path)[0]
