"""This machine as a provider: its own GPU, nothing billed, nothing to rent or tear down."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable

import anyio

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.providers.clouds.gpus import gpu_matches, unify_gpu_name
from ategnatos_mcp.providers.models import Balance, CreateRequest, GpuOffer, Instance, OfferQuery, ProviderName

__all__ = ["LocalProvider", "detect_local_gpus"]

LocalGpu = tuple[str, float]


async def detect_local_gpus() -> list[LocalGpu]:
    """(name, VRAM GB) per GPU from ``nvidia-smi``; empty when there is none."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        result = await anyio.run_process(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"], check=False
        )
    except OSError:
        return []
    gpus: list[LocalGpu] = []
    for line in result.stdout.decode(errors="replace").splitlines():
        name, _, memory = line.partition(",")
        if name.strip() and memory.strip().isdigit():
            gpus.append((name.strip(), round(int(memory.strip()) / 1024, 1)))
    return gpus


class LocalProvider:
    """The local GPU shows up as a free offer, so "use what I have" is always an option."""

    name: ProviderName = "local"
    label = "this computer"

    def __init__(self, detect: Callable[[], Awaitable[list[LocalGpu]]] = detect_local_gpus) -> None:
        self._detect = detect

    async def offers(self, query: OfferQuery) -> list[GpuOffer]:
        """One offer for the local GPUs if they fit."""
        gpus = await self._detect()
        if len(gpus) < query.gpu_count:
            return []
        name, vram = gpus[0]
        unified = unify_gpu_name(name)
        if query.gpu and not gpu_matches(unified, query.gpu):
            return []
        return [
            GpuOffer(
                provider="local",
                offer_ref="local",
                gpu=unified,
                gpu_label=name,
                gpu_count=query.gpu_count,
                vram_gb=vram,
                usd_per_hour=0.0,
                kind="this computer",
                region="here",
                notes=["Your own GPU: nothing to rent, nothing billed."],
            )
        ]

    async def quote(self, offer: GpuOffer) -> GpuOffer | None:
        """The local offer never changes price."""
        return offer

    async def create(self, request: CreateRequest) -> Instance:
        """Nothing to rent: use the local ComfyUI or training tools directly."""
        raise InvalidRequestError(
            "This computer's GPU does not need renting.",
            hint="Use it directly: ComfyUI and training run here without gpu_spinup.",
        )

    async def get(self, instance_id: str) -> Instance | None:
        """The local machine is not an instance."""
        return None

    async def list(self) -> list[Instance]:
        """No rented instances here."""
        return []

    async def stop(self, instance_id: str) -> None:
        """Nothing to stop."""

    async def terminate(self, instance_id: str) -> None:
        """Nothing to terminate."""

    async def balance(self) -> Balance | None:
        """Nothing billed."""
        return Balance(provider="local", usd=None, note="Your own GPU costs nothing here.")

    async def register_ssh_key(self, public_key: str) -> str:
        """No keys needed."""
        return "local"
