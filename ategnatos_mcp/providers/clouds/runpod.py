"""RunPod over REST v2 (pods, catalog, SSH keys) plus the deprecated GraphQL endpoint, for the balance only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from ategnatos_mcp.providers.clouds.base import (
    AnswerLimits,
    CreateOutcomeUnknownError,
    HttpApi,
    OfferUnavailableError,
    PaymentRequiredError,
    ProviderHttpError,
)
from ategnatos_mcp.providers.clouds.gpus import gpu_matches, unify_gpu_name
from ategnatos_mcp.providers.models import (
    Balance,
    CreateRequest,
    GpuOffer,
    Instance,
    InstanceStatus,
    OfferQuery,
    ProviderName,
)

__all__ = ["RunPodProvider"]

_STATUS = {
    "PROVISIONING": InstanceStatus.PENDING,
    "STARTING": InstanceStatus.STARTING,
    "RUNNING": InstanceStatus.RUNNING,
    "EXITED": InstanceStatus.STOPPED,
    "ERROR": InstanceStatus.FAILED,
    "TERMINATED": InstanceStatus.TERMINATED,
}
_CLOUDS = ("SECURE", "COMMUNITY")
_BALANCE_QUERY = "query { myself { id clientBalance currentSpendPerHr spendLimit } }"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Price(_Loose):
    secure: float | None = None
    community: float | None = None


class _DataCenter(_Loose):
    id: str
    availability: str | None = None


class _GpuType(_Loose):
    id: str
    name: str = ""
    memory: float = 0
    secure: bool = False
    community: bool = False
    price: _Price = _Price()
    availability: str | None = None
    dataCenters: list[_DataCenter] = []


class _SshDirect(_Loose):
    host: str
    port: int
    username: str = "root"


class _Ssh(_Loose):
    direct: _SshDirect | None = None


class _RuntimePort(_Loose):
    private: int | None = None
    public: int | None = None
    type: str | None = None
    ip: str | None = None


class _Runtime(_Loose):
    ports: list[_RuntimePort] | None = None


class _PodGpu(_Loose):
    id: str = ""
    count: int = 1


class _Pod(_Loose):
    id: str
    name: str = ""
    status: str = ""
    gpu: _PodGpu | None = None
    cost: float | None = None
    dataCenterId: str | None = None
    ssh: _Ssh | None = None
    runtime: _Runtime | None = None
    createdAt: datetime | None = None

    def to_instance(self) -> Instance:
        host, port = None, None
        if self.ssh and self.ssh.direct:
            host, port = self.ssh.direct.host, self.ssh.direct.port
        elif self.runtime and self.runtime.ports:
            # Fallback the README describes: the public mapping of 22/tcp.
            for mapping in self.runtime.ports:
                if mapping.private == 22 and mapping.type == "tcp" and mapping.ip and mapping.public:
                    host, port = mapping.ip, mapping.public
        return Instance(
            provider="runpod",
            instance_id=self.id,
            name=self.name,
            status=_STATUS.get(self.status, InstanceStatus.FAILED),
            provider_status=self.status,
            gpu=unify_gpu_name(self.gpu.id) if self.gpu and self.gpu.id else "",
            gpu_count=self.gpu.count if self.gpu else 1,
            usd_per_hour=self.cost,
            ssh_host=host,
            ssh_port=port,
            region=self.dataCenterId,
            created_at=self.createdAt,
        )


class RunPodProvider:
    """RunPod pods. ``http`` carries the Bearer key and the v2 base URL; ``graphql_url`` is absolute."""

    name: ProviderName = "runpod"
    label = "RunPod"

    def __init__(self, http: httpx.AsyncClient, *, graphql_url: str, limits: AnswerLimits | None = None) -> None:
        self._api = HttpApi(http, service="runpod", label=self.label, limits=limits)
        self._graphql_url = graphql_url

    async def _catalog(self, count: int, cloud: str) -> list[_GpuType]:
        params = {"include": "AVAILABILITY", "product": "POD", "count": str(count), "cloud": cloud}
        response = await self._api.call("GET", "catalog/gpus", params=params)
        assert response is not None
        return [_GpuType.model_validate(item) for item in response.json().get("gpus", [])]

    async def offers(self, query: OfferQuery) -> list[GpuOffer]:
        """Catalog entries with stock on the secure and community clouds."""
        offers: list[GpuOffer] = []
        for cloud in _CLOUDS:
            for gpu_type in await self._catalog(query.gpu_count, cloud):
                offer = _offer(gpu_type, cloud, query.gpu_count)
                if offer is not None and (query.gpu is None or gpu_matches(offer.gpu, query.gpu)):
                    offers.append(offer)
        return offers

    async def quote(self, offer: GpuOffer) -> GpuOffer | None:
        """Today's list price for the same GPU type and cloud."""
        gpu_id, cloud = offer.offer_ref.rsplit("|", 1)
        for gpu_type in await self._catalog(offer.gpu_count, cloud):
            if gpu_type.id == gpu_id:
                return _offer(gpu_type, cloud, offer.gpu_count)
        return None

    async def create(self, request: CreateRequest) -> Instance:
        """POST /pods. 400/403 → this candidate has no capacity for us; 402 → no money; 5xx/timeout → unknown."""
        gpu_id, cloud = request.offer.offer_ref.rsplit("|", 1)
        body: dict[str, Any] = {
            "name": request.name,
            "image": request.image,
            # Pin the host's CUDA to what the image needs, or the pod may never start (README gotcha 5).
            "gpu": {"id": gpu_id, "count": request.offer.gpu_count, "minCudaVersion": request.min_cuda},
            "cloud": cloud,
            "disk": request.disk_gb,
            "ports": ["22/tcp"],
            "env": {"PUBLIC_KEY": request.ssh_public_key, "ATEGNATOS_TAG": request.tag},
            "startSsh": True,
        }
        try:
            response = await self._api.call("POST", "pods", json=body, timeout=60)
        except ProviderHttpError as exc:
            raise _create_error(exc) from exc
        assert response is not None
        return _Pod.model_validate(response.json()).to_instance()

    async def get(self, instance_id: str) -> Instance | None:
        """GET /pods/{id}; 404 means it is gone."""
        response = await self._api.call("GET", f"pods/{instance_id}", ok_missing=True)
        return None if response is None else _Pod.model_validate(response.json()).to_instance()

    async def list(self) -> list[Instance]:
        """GET /pods (no pagination on v2)."""
        response = await self._api.call("GET", "pods")
        assert response is not None
        return [_Pod.model_validate(pod).to_instance() for pod in response.json().get("pods", [])]

    async def stop(self, instance_id: str) -> None:
        """Stop: the GPU is released; a volume disk keeps billing at $0.20/GB/month."""
        await self._api.call("POST", f"pods/{instance_id}/action", json={"action": "stop"})

    async def terminate(self, instance_id: str) -> None:
        """DELETE /pods/{id}; 404 = already gone."""
        await self._api.call("DELETE", f"pods/{instance_id}", ok_missing=True)

    async def balance(self) -> Balance | None:
        """Only GraphQL has the balance; it is retiring, so failures degrade to 'unknown'."""
        try:
            response = await self._api.call("POST", self._graphql_url, json={"query": _BALANCE_QUERY}, timeout=15)
        except ProviderHttpError:
            return Balance(provider="runpod", usd=None, note="RunPod did not report a balance right now.")
        assert response is not None
        data = response.json()
        myself = (data.get("data") or {}).get("myself") if isinstance(data, dict) else None
        if data.get("errors") or not myself:
            return Balance(provider="runpod", usd=None, note="RunPod did not report a balance right now.")
        return Balance(
            provider="runpod", usd=myself.get("clientBalance"), spend_per_hour=myself.get("currentSpendPerHr")
        )

    async def register_ssh_key(self, public_key: str) -> str:
        """PUT /account/ssh-keys replaces the whole list, so send the union with what is there."""
        response = await self._api.call("GET", "account/ssh-keys")
        assert response is not None
        keys: list[str] = list(response.json().get("keys", []))
        if not any(_same_key(existing, public_key) for existing in keys):
            await self._api.call("PUT", "account/ssh-keys", json={"keys": [*keys, public_key]})
        return "account"


def _same_key(a: str, b: str) -> bool:
    return a.split()[:2] == b.split()[:2]


def _offer(gpu_type: _GpuType, cloud: str, count: int) -> GpuOffer | None:
    offered = gpu_type.secure if cloud == "SECURE" else gpu_type.community
    price = gpu_type.price.secure if cloud == "SECURE" else gpu_type.price.community
    if not offered or price is None or gpu_type.availability in (None, "NONE"):
        return None
    regions = [dc.id for dc in gpu_type.dataCenters]
    notes = (
        ["Community cloud: third-party hosts, cheaper, but the public IP can change on restart."]
        if cloud == "COMMUNITY"
        else ["Secure cloud: RunPod's own data centres, always a public IP."]
    )
    return GpuOffer(
        provider="runpod",
        offer_ref=f"{gpu_type.id}|{cloud}",
        gpu=unify_gpu_name(gpu_type.id),
        gpu_label=gpu_type.name or gpu_type.id,
        gpu_count=count,
        vram_gb=gpu_type.memory,
        usd_per_hour=round(price * count, 4),
        kind="community cloud" if cloud == "COMMUNITY" else "secure cloud",
        storage_usd_per_gb_month=0.10,
        storage_billed_when_stopped=True,
        region=",".join(regions) or None,
        availability=gpu_type.availability.lower(),
        notes=notes,
    )


def _create_error(exc: ProviderHttpError) -> ProviderHttpError:
    detail = exc.body
    if exc.status in (400, 403):
        return OfferUnavailableError(
            f"RunPod has no capacity for this GPU right now ({exc.status}).",
            service="runpod",
            status=exc.status,
            body=detail,
            hint="Another offer may work; ask for offers again.",
        )
    if exc.status == 402:
        return PaymentRequiredError(
            "RunPod says your balance is too low to rent this (it needs at least one hour of credit).",
            service="runpod",
            status=402,
            hint="Add funds in the RunPod console, then ask for offers again.",
        )
    if exc.status is None or exc.status >= 500:
        return CreateOutcomeUnknownError(
            "RunPod did not confirm the rental; it may or may not have started.",
            service="runpod",
            status=exc.status,
            hint="Ategnatos checks RunPod's list by tag before doing anything else.",
        )
    return exc
