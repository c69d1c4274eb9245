"""Cross-domain wiring of train_evaluate: the ComfyUI pool draws the sheet, and the LoRA files go to the ComfyUI's
``models/loras`` folder, on this machine or (through the SSH session remote_deploy opened) on a rented instance.

Kept apart from the adapter so it moves as one piece into the typed wiring object (issue 13).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ategnatos_mcp.comfyui import LoraChoice, get_service
from ategnatos_mcp.comfyui.service import ComfyUIService
from ategnatos_mcp.context import AppContext
from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.providers import Deployer
from ategnatos_mcp.training.evaluation import (
    EvalStudio,
    Evaluations,
    Keeper,
    LocalShelf,
    LoraShelf,
    RemoteShelf,
    RenderResult,
)
from ategnatos_mcp.training.execution import TrainingRuns

__all__ = ["eval_studio", "evaluations", "keeper"]

EVALUATIONS = "training-evaluations"
KEEPER = "training-keeper"
COMFYUI_ON_INSTANCE = "ComfyUI/models/loras"  # remote_deploy's ComfyUI folder, relative to the login home


async def evaluations(app: AppContext, runs: TrainingRuns) -> Evaluations:
    """The server's Evaluations (one, so a repeat call finds the sheet being made)."""

    async def build(a: AppContext) -> Evaluations:
        cfg = a.settings.comfyui
        return Evaluations(
            a.store,
            runs,
            runs.hosts,
            a.clock,
            a.task_group,
            a.settings.workspace_dir,
            preview_max_side=max(cfg.preview_max_side, 1536),
            preview_budget_bytes=min(cfg.preview_budget_bytes, 600_000),
        )

    return await app.service(EVALUATIONS, build)


async def keeper(app: AppContext, runs: TrainingRuns) -> Keeper:
    found = await evaluations(app, runs)  # outside the factory: app.service's lock is not re-entrant

    async def build(_: AppContext) -> Keeper:
        return Keeper(found)

    return await app.service(KEEPER, build)


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


def _shelf_for(app: AppContext, url: str) -> LoraShelf | None:
    """ComfyUI's LoRA folder for the server at ``url``, when Ategnatos can reach it."""
    deployer = app.services.get("gpu-deploy")
    key = deployer.instance_for(url) if isinstance(deployer, Deployer) else None
    if key is not None:
        assert isinstance(deployer, Deployer)
        session = deployer.session_for(key)
        if session is None:
            return None
        where = f"{session.host.host}:{session.host.port}"
        return RemoteShelf(session, COMFYUI_ON_INSTANCE, label=key, identities={key, where})
    models = app.settings.comfyui.models_dir
    if models is None and _loopback(url):
        usual = Path.home() / "ComfyUI" / "models"
        models = usual if (usual / "loras").is_dir() else None
    if models is None:
        return None
    models = models.expanduser()
    return LocalShelf((models if models.is_absolute() else app.settings.home / models) / "loras")


async def eval_studio(app: AppContext, training_host: str) -> EvalStudio:
    """The ComfyUI to draw with: one on the training host's machine first (no file travels), else one whose LoRA
    folder Ategnatos can reach, else the first that answers.

    Raises:
        UpstreamError: no ComfyUI answers.
    """
    service = await get_service(app)
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
    shelves = {s.url: _shelf_for(app, s.url) for s in up}
    near = [s for s in up if (shelf := shelves[s.url]) is not None and shelf.shares_disk_with(training_host)]
    reachable = [s for s in up if shelves[s.url] is not None]
    chosen = (near or reachable or up)[0]
    deployer = app.services.get("gpu-deploy")
    revive = deployer.revive if isinstance(deployer, Deployer) and deployer.instance_for(chosen.url) else None
    return EvalStudio(PoolRenderer(service, chosen.url, revive), shelves[chosen.url])
