"""How an evaluation reaches ComfyUI: one server of the pool draws the contact sheet, and the LoRA files go to that
ComfyUI's ``models/loras`` folder, on this machine or (through the SSH session remote_deploy opened) on a rented
instance. Used by the wiring (``core.Wiring.eval_studio``); imports no wiring itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ategnatos_mcp.comfyui import ComfyUIService, LoraChoice
from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.providers import Deployer
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.training.evaluation import EvalStudio, LocalShelf, LoraShelf, RemoteShelf, RenderResult

__all__ = ["PoolRenderer", "choose_studio", "shelf_for"]

COMFYUI_ON_INSTANCE = "ComfyUI/models/loras"  # remote_deploy's ComfyUI folder, relative to the login home


class PoolRenderer:
    """One ComfyUI of the pool, as the evaluation's Renderer."""

    def __init__(self, service: ComfyUIService, url: str, revive: Callable[[str], Awaitable[bool]] | None) -> None:
        self.service = service
        self.url = url
        self.revive = revive  # reopens an SSH tunnel a dropped link closed (a rented ComfyUI)

    async def listing(self) -> dict[str, list[str]]:
        for attempt in range(2):
            for status in await self.service.pool.status():
                if status.url == self.url and status.reachable:
                    return status.models
            if attempt or self.revive is None or not await self.revive(self.url):
                break
        raise UpstreamError(
            f"The ComfyUI at {self.url} stopped answering.",
            service="comfyui",
            hint="Start it again (comfyui_status shows it), then call train_evaluate again: nothing is made twice.",
            retryable=True,
        )

    async def submit(self, template: str, params: dict[str, Any], loras: list[tuple[str, float]]) -> str:
        view = await self.service.submit(
            template=template,
            params=params,
            workflow=None,
            loras=[LoraChoice(name=name, weight=weight) for name, weight in loras],
            images={},
            wait_seconds=0,
            allow_flagged=False,
            progress=None,
        )
        return view.job_id

    async def wait(self, job_id: str, seconds: float) -> RenderResult:
        record = await self.service.pool.wait(job_id, seconds)
        image = next((f.path for f in record.saved if f.kind == "image"), None)
        return RenderResult(state=record.state.value, image=image, error=record.error)


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shelf_for(settings: Settings, deployer: Deployer | None, url: str) -> LoraShelf | None:
    """ComfyUI's LoRA folder for the server at ``url``, when Ategnatos can reach it."""
    key = deployer.instance_for(url) if deployer is not None else None
    if key is not None:
        assert deployer is not None
        session = deployer.session_for(key)
        if session is None:
            return None
        where = f"{session.host.host}:{session.host.port}"
        return RemoteShelf(session, COMFYUI_ON_INSTANCE, label=key, identities={key, where})
    models = settings.comfyui.models_dir
    if models is None and _loopback(url):
        usual = Path.home() / "ComfyUI" / "models"
        models = usual if (usual / "loras").is_dir() else None
    if models is None:
        return None
    models = models.expanduser()
    return LocalShelf((models if models.is_absolute() else settings.home / models) / "loras")


async def choose_studio(
    service: ComfyUIService, settings: Settings, deployer: Deployer | None, training_host: str
) -> EvalStudio:
    """The ComfyUI to draw with: one on the training host's machine first (no file travels), else one whose LoRA
    folder Ategnatos can reach, else the first that answers.

    Raises:
        UpstreamError: no ComfyUI answers.
    """
    up = [s for s in await service.pool.status() if s.reachable]
    if not up:
        urls = ", ".join(service.pool.urls) or "none configured"
        raise UpstreamError(
            f"No ComfyUI is answering ({urls}), and the contact sheet is drawn by ComfyUI.",
            service="comfyui",
            hint="Start ComfyUI (comfyui_status shows where it is expected), or set one up on the GPU instance with "
            "remote_deploy target='comfyui'; then call train_evaluate again.",
            retryable=True,
        )
    shelves = {s.url: shelf_for(settings, deployer, s.url) for s in up}
    near = [s for s in up if (shelf := shelves[s.url]) is not None and shelf.shares_disk_with(training_host)]
    reachable = [s for s in up if shelves[s.url] is not None]
    chosen = (near or reachable or up)[0]
    revive = deployer.revive if deployer is not None and deployer.instance_for(chosen.url) else None
    return EvalStudio(PoolRenderer(service, chosen.url, revive), shelves[chosen.url])
