"""The ComfyUI upscale path for exports: enlarge a small source with an upscale model before resizing.

Plugs into ``AssetExporter(upscaler=...)``. Any failure (no server, no upscale model, a job that does not
finish in time) raises an ``AtegnatosError``; the exporter then falls back to Lanczos and says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from ategnatos_mcp.comfyui import ComfyUIService
from ategnatos_mcp.errors import UpstreamError

__all__ = ["UPSCALE_TEMPLATE", "ComfyUIUpscaler"]

UPSCALE_TEMPLATE = "upscale-esrgan"


class ComfyUIUpscaler:
    """Runs the ``upscale-esrgan`` template on the first reachable ComfyUI that has an upscale model.

    ``service`` is a factory so ComfyUI is only contacted when an export actually needs enlarging.
    """

    def __init__(
        self, service: Callable[[], Awaitable[ComfyUIService]], *, wait_seconds: float = 45.0, model: str | None = None
    ) -> None:
        self._service = service
        self._wait = wait_seconds
        self._model = model

    async def __call__(self, path: Path, factor: float) -> Path:
        """Enlarge the image at ``path`` (one pass of the model) and return the saved result.

        Raises:
            UpstreamError: no reachable server with an upscale model, or the job failed or is still running.
        """
        service = await self._service()
        model = self._model or await _first_upscale_model(service)
        view = await service.submit(
            template=UPSCALE_TEMPLATE,
            params={"image": str(path), "upscale_model": model},
            workflow=None,
            loras=[],
            images={},
            wait_seconds=self._wait,
            allow_flagged=False,
            progress=None,
        )
        image = next((Path(f.path) for f in view.files if f.kind == "image"), None)
        if view.state != "succeeded" or image is None:
            raise UpstreamError(
                f"The ComfyUI upscale job {view.job_id} is {view.state}" + (f": {view.error}" if view.error else "."),
                service="comfyui",
                hint="Check it with comfyui_job; export again once it has finished, or export without the upscaler.",
            )
        return image


async def _first_upscale_model(service: ComfyUIService) -> str:
    status = await service.status()
    for server in status.servers:
        if server.reachable and server.models.get("upscale_models"):
            return server.models["upscale_models"][0]
    raise UpstreamError(
        "No reachable ComfyUI server has an upscale model.",
        service="comfyui",
        hint="Start ComfyUI and put an ESRGAN-type model (e.g. RealESRGAN_x4plus) in models/upscale_models.",
    )
