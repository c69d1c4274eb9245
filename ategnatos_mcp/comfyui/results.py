"""Save a job's outputs full-size under ``workspace/outputs/`` with a provenance sidecar, and make previews.

Outputs are the files ComfyUI saved (fetched through ``/view``) and the pictures a node streamed over the
websocket (``SaveImageWebsocket``), which exist nowhere else.

Previews are downscaled JPEGs (or the file itself when it is already small) that together stay within a
byte budget, so an answer with many images still fits an MCP client's limits. Pillow is imported lazily
and runs in a worker thread, in the same trip as the file writes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from ategnatos_mcp.comfyui.client import ComfyUIClient
from ategnatos_mcp.comfyui.models import JobRecord, OutputFile, SavedOutput, WsImage
from ategnatos_mcp.errors import AtegnatosError
from ategnatos_mcp.state.atomic import write_bytes_atomic

__all__ = ["make_previews", "save_outputs"]

_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
_KIND_BY_EXT = {".gif": "gif", ".mp4": "video", ".webm": "video", ".mov": "video", ".wav": "audio", ".mp3": "audio"}
_KIND_BY_EXT.update({".flac": "audio", ".ogg": "audio"})
_PASS_THROUGH = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_EXT_BY_MIME = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def _kind(filename: str) -> str:
    ext = Path(filename).suffix.lower()
    return "image" if ext in _IMAGE_EXT else _KIND_BY_EXT.get(ext, "file")


async def save_outputs(
    record: JobRecord,
    client: ComfyUIClient,
    outputs_dir: Path,
    *,
    workflow: dict[str, Any],
    preview_max_side: int = 768,
    preview_budget_bytes: int = 1_000_000,
    streamed: Sequence[tuple[str, WsImage]] = (),
) -> tuple[list[SavedOutput], list[tuple[bytes, str]]]:
    """Download every output file of a finished job (all at once), add the pictures ``streamed`` over the
    socket as (node id, picture), record where each came from, and make the previews from the bytes in hand
    (one worker-thread trip for all of it)."""
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
    job = {
        "job_id": record.job_id,
        "server": record.server,
        "prompt_id": record.prompt_id,
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
    items = []
    for index, (node_id, file) in enumerate(wanted):
        data, content_type = fetched[index]
        target = folder / f"{record.job_id}_{node_id}_{Path(file.filename).name}"
        own = {"node_id": node_id, "comfyui_file": file.model_dump(), "content_type": content_type}
        items.append((node_id, target, data, own))
    counts: dict[str, int] = {}
    for node_id, image in streamed:
        counts[node_id] = number = counts.get(node_id, 0) + 1
        ext = _EXT_BY_MIME.get(image.mime_type, ".bin")
        target = folder / f"{record.job_id}_{node_id}_socket_{number:05d}{ext}"
        own = {"node_id": node_id, "comfyui_file": None, "received_over": "websocket", "content_type": image.mime_type}
        items.append((node_id, target, image.data, own))
    return await anyio.to_thread.run_sync(_write_all, items, job, preview_max_side, preview_budget_bytes)


def _write_all(
    items: list[tuple[str, Path, bytes, dict[str, Any]]], job: dict[str, Any], max_side: int, budget: int
) -> tuple[list[SavedOutput], list[tuple[bytes, str]]]:
    """Worker thread: every file, its sidecar and the previews, in one trip off the event loop."""
    if items:
        items[0][1].parent.mkdir(parents=True, exist_ok=True)
    saved = []
    for node_id, target, data, own in items:
        sidecar = target.with_name(target.name + ".json")
        _replace(target, data)
        _replace(sidecar, _provenance(own, job))
        saved.append(SavedOutput(node_id=node_id, kind=_kind(target.name), path=str(target), sidecar=str(sidecar)))
    sources = {str(target): data for _, target, data, _ in items}
    return saved, _previews(saved, max_side, budget, sources)


def _provenance(own: dict[str, Any], job: dict[str, Any]) -> bytes:
    # Compact JSON: the C encoder (an indented dump runs the pure-Python one, ~15x slower per sidecar).
    return json.dumps({**own, **job}, ensure_ascii=False).encode("utf-8")


def _replace(path: Path, data: bytes) -> None:
    # Temp file + rename so no reader sees a half-written picture (a kill leaves only a temp file the sweep knows).
    # No fsync: outputs can be fetched again from ComfyUI, and fsync per file doubled the cost of a fast job.
    write_bytes_atomic(path, data, mode=0o644, fsync=False)


async def make_previews(saved: list[SavedOutput], *, max_side: int, budget_bytes: int) -> list[tuple[bytes, str]]:
    """Previews of the saved images, all together within ``budget_bytes``: downscaled JPEGs, or the file
    itself when it is already a small PNG/JPEG/WebP that fits.

    Marks each included output ``previewed`` (and fills in its size); images that would not fit are left
    out (their files are named).
    """
    return await anyio.to_thread.run_sync(_previews, saved, max_side, budget_bytes)


def _previews(
    saved: list[SavedOutput], max_side: int, budget: int, sources: dict[str, bytes] | None = None
) -> list[tuple[bytes, str]]:
    sources = sources or {}
    images = [s for s in saved if s.kind == "image"]
    out: list[tuple[bytes, str]] = []
    remaining = budget
    for index, item in enumerate(images):
        share = remaining // (len(images) - index)
        try:
            data = sources[item.path] if item.path in sources else Path(item.path).read_bytes()
        except OSError:
            continue
        made = _preview_one(item, data, max_side, share)
        if made is None:
            continue
        item.previewed = True
        remaining -= len(made[0])
        out.append(made)
    return out


def _preview_one(item: SavedOutput, data: bytes, max_side: int, limit: int) -> tuple[bytes, str] | None:
    """The image's preview within ``limit`` bytes (None when it cannot be read or made to fit); sets its size."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            item.width, item.height = img.size
            mime = _PASS_THROUGH.get(img.format or "")
            if mime and max(img.size) <= max_side and len(data) <= limit:
                return data, mime  # already small: no decode, no recompression, no loss
            img.load()
            made = _fit(img, max_side, limit)
    except (UnidentifiedImageError, OSError):
        return None
    return (made, "image/jpeg") if made is not None else None


def _fit(img: Any, max_side: int, limit: int) -> bytes | None:
    """Shrink and recompress until the JPEG fits ``limit`` bytes (None when even a tiny one does not)."""
    rgb = img.convert("RGB")
    side = max_side
    quality = 85
    shrunk, shrunk_side = rgb, 0
    while side >= 64:
        if shrunk_side != side:  # resize once per size, not once per quality step
            shrunk = rgb.copy()
            shrunk.thumbnail((side, side))
            shrunk_side = side
        buffer = io.BytesIO()
        shrunk.save(buffer, format="JPEG", quality=quality, optimize=True)
        if buffer.tell() <= limit:
            return buffer.getvalue()
        if quality > 60:
            quality -= 15
        else:
            side = int(side * 0.7)
    return None
