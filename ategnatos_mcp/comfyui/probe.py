"""probe_servers: is each configured ComfyUI up, which version, how busy, which models it has."""

from __future__ import annotations

import anyio
import httpx

from ategnatos_mcp.comfyui.client import ComfyUIClient
from ategnatos_mcp.comfyui.failures import NotComfyUI, address_hint, start_hint
from ategnatos_mcp.comfyui.models import ComfyUIProbe
from ategnatos_mcp.errors import UpstreamError

__all__ = ["MODEL_FOLDERS", "probe_client", "probe_servers"]

# The folders an artist cares about; others (configs, vae_approx...) are noise in a status answer.
MODEL_FOLDERS = (
    "checkpoints",
    "loras",
    "vae",
    "upscale_models",
    "controlnet",
    "diffusion_models",
    "text_encoders",
    "embeddings",
)


async def probe_servers(urls: list[str], *, timeout: float = 3.0, deadline: float = 10.0) -> list[ComfyUIProbe]:
    """Probe every URL at once; never raises for a server that is down (``reachable=False``, ``error`` says why).

    ``timeout`` bounds each request, ``deadline`` each server's whole probe.
    """
    results: list[ComfyUIProbe | None] = [None] * len(urls)
    async with httpx.AsyncClient(timeout=timeout) as http:

        async def one(index: int, url: str) -> None:
            results[index] = await probe_client(ComfyUIClient(url, http, timeout=timeout), deadline=deadline)

        async with anyio.create_task_group() as tg:
            for index, url in enumerate(urls):
                tg.start_soon(one, index, url)
    return [r for r in results if r is not None]


async def probe_client(client: ComfyUIClient, *, deadline: float = 10.0) -> ComfyUIProbe:
    """One server's probe, through an existing client, finished (or given up) within ``deadline`` seconds."""
    found: dict[str, list[str]] = {}
    try:
        with anyio.fail_after(deadline):
            stats = await client.system_stats()
            queue = await client.queue()
            folders = set(await client.model_folders())

            async def listing(folder: str) -> None:
                found[folder] = sorted(await client.models(folder))

            async with anyio.create_task_group() as tg:
                for folder in MODEL_FOLDERS:
                    if folder in folders:
                        tg.start_soon(listing, folder)
    except TimeoutError:
        return ComfyUIProbe(
            url=client.url,
            reachable=False,
            error=f"ComfyUI at {client.url} did not finish describing itself within {deadline:g} s. It may be busy "
            f"loading a model (try again in a minute), or the address points at something else. {address_hint(client.url)}",
        )
    except UpstreamError as exc:
        return ComfyUIProbe(
            url=client.url,
            reachable=False,
            not_comfyui=isinstance(exc, NotComfyUI),
            error=f"{exc.message} {exc.hint or start_hint(client.url)}",
        )
    return ComfyUIProbe(
        url=client.url,
        reachable=True,
        version=stats.comfyui_version,
        queue_running=len(queue.running),
        queue_pending=len(queue.pending),
        models={folder: found[folder] for folder in MODEL_FOLDERS if folder in found},
        devices=[str(d.get("name", "?")) for d in stats.devices],
    )
