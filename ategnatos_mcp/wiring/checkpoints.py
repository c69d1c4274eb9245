"""The checkpoints each reachable ComfyUI lists, for a training plan's base-model suggestions (training <- comfyui).
Used by the wiring (``core.Wiring.comfyui_checkpoints``); imports no wiring itself."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import httpx

from ategnatos_mcp.comfyui import ComfyUIClient
from ategnatos_mcp.errors import AtegnatosError

__all__ = ["comfyui_checkpoints"]


async def comfyui_checkpoints(urls: Sequence[str], *, timeout: float) -> dict[str, list[str]]:
    """The checkpoint (and diffusion-model) files each ComfyUI of ``urls`` lists, by URL; a server that is down or
    answers something else is left out (never a reason to fail a plan). Waits at most ``2 * timeout``."""
    found: dict[str, list[str]] = {}
    async with httpx.AsyncClient(timeout=timeout) as http:

        async def one(url: str) -> None:
            client = ComfyUIClient(url, http, timeout=timeout)
            try:
                found[client.url] = [*await client.models("checkpoints"), *await client.models("diffusion_models")]
            except (AtegnatosError, ValueError):
                return

        with anyio.move_on_after(2 * timeout):
            async with anyio.create_task_group() as tg:
                for url in urls:
                    tg.start_soon(one, url)
    return {url: found[url] for url in (u.rstrip("/") for u in urls) if url in found}
