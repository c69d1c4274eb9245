"""Vast.ai: a marketplace of host offers. Rent an offer id, poll ``actual_status``; storage bills until destroyed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
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

__all__ = ["VastProvider"]

# The official client always adds these, so we only see offers that can really be rented.
_DEFAULT_FILTERS: dict[str, Any] = {
    "verified": {"eq": True},
    "external": {"eq": False},
    "rentable": {"eq": True},
    "rented": {"eq": False},
}
_FAILED = {"exited", "unknown", "offline"}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Offer(_Loose):
    id: int
    gpu_name: str
    num_gpus: int = 1
    gpu_ram: float = 0
    dph_total: float
    storage_cost: float | None = None
    inet_down_cost: float | None = None
    reliability: float | None = None
    reliability2: float | None = None
    geolocation: str | None = None
    cuda_max_good: float | None = None


class _Instance(_Loose):
    id: int
    label: str | None = None
    actual_status: str | None = None
    intended_status: str | None = None
    status_msg: str | None = None
    gpu_name: str | None = None
    num_gpus: int = 1
    dph_total: float | None = None
    public_ipaddr: str | None = None
    ports: dict[str, Any] | None = None
    ssh_host: str | None = None
    ssh_port: int | None = None
    image_runtype: str | None = None
    geolocation: str | None = None
    start_date: float | None = None

    def status(self) -> InstanceStatus:
        actual, intended = self.actual_status, self.intended_status
        message = (self.status_msg or "").lower()
        if actual is None:
            return InstanceStatus.PENDING
        if actual in _FAILED or (actual == "created" and "error" in message):
            return InstanceStatus.FAILED
        if actual in ("loading", "rebooting", "scheduling", "created"):
            return InstanceStatus.STARTING
        if actual == "running":
            return InstanceStatus.RUNNING
        if actual in ("stopped", "frozen"):
            # Stopped while we wanted it running means it was outbid or the host stopped it.
            return InstanceStatus.STOPPED if intended != "running" else InstanceStatus.FAILED
        return InstanceStatus.FAILED

    def ssh(self) -> tuple[str | None, int | None]:
        # Prefer direct SSH (like the official CLI); the proxy port is +1 on jupyter runtypes.
        mapped = (self.ports or {}).get("22/tcp")
        if mapped and self.public_ipaddr:
            return self.public_ipaddr.strip(), int(mapped[0]["HostPort"])
        if self.ssh_host and self.ssh_port and self.actual_status == "running":
            bump = 1 if "jupyter" in (self.image_runtype or "") else 0
            return self.ssh_host, self.ssh_port + bump
        return None, None

    def to_instance(self) -> Instance:
        host, port = self.ssh()
        return Instance(
            provider="vast",
            instance_id=str(self.id),
            name=self.label or "",
            status=self.status(),
            provider_status=self.actual_status or "provisioning",
            status_detail=self.status_msg or "",
            gpu=unify_gpu_name(self.gpu_name) if self.gpu_name else "",
            gpu_count=self.num_gpus,
            usd_per_hour=self.dph_total,
            ssh_host=host,
            ssh_port=port,
            region=self.geolocation,
            created_at=datetime.fromtimestamp(self.start_date, UTC) if self.start_date else None,
        )


class VastProvider:
    """Vast.ai. ``http`` carries the Bearer key and the ``/api/v0`` base URL."""

    name: ProviderName = "vast"
    label = "Vast.ai"

    def __init__(self, http: httpx.AsyncClient, *, list_url: str, limits: AnswerLimits | None = None) -> None:
        self._api = HttpApi(http, service="vast", label=self.label, limits=limits)
        self._list_url = list_url

    async def _search(self, filters: dict[str, Any], disk_gb: int, limit: int = 40) -> list[_Offer]:
        body = {
            **_DEFAULT_FILTERS,
            **filters,
            "order": [["dph_total", "asc"]],
            "type": "on-demand",
            "limit": limit,
            "allocated_storage": disk_gb,
        }
        response = await self._api.call("POST", "bundles/", json=body)
        assert response is not None
        return [_Offer.model_validate(item) for item in response.json().get("offers", [])]

    async def offers(self, query: OfferQuery) -> list[GpuOffer]:
        """Marketplace offers; storage for ``disk_gb`` is folded into the hourly price."""
        # Direct SSH needs a mapped port; slow hosts take hours to pull a 10-20 GB image (README gotchas).
        filters: dict[str, Any] = {
            "num_gpus": {"eq": query.gpu_count},
            "disk_space": {"gte": query.disk_gb},
            "direct_port_count": {"gte": 1},
            "inet_down": {"gte": 100},
            "cuda_max_good": {"gte": float(query.min_cuda)},
        }
        if query.min_vram_gb:
            filters["gpu_ram"] = {"gte": int(query.min_vram_gb * 1000)}
        if query.max_usd_per_hour:
            filters["dph_total"] = {"lte": query.max_usd_per_hour}
        if query.min_reliability:
            filters["reliability"] = {"gte": query.min_reliability}
        found = [_offer(item, query.disk_gb) for item in await self._search(filters, query.disk_gb)]
        return [offer for offer in found if query.gpu is None or gpu_matches(offer.gpu, query.gpu)]

    async def quote(self, offer: GpuOffer) -> GpuOffer | None:
        """Search for the same offer id: gone means someone else rented it."""
        disk_gb = int(offer.offer_ref.split("|")[1])
        found = await self._search({"id": {"eq": int(offer.offer_ref.split("|")[0])}}, disk_gb, limit=1)
        return _offer(found[0], disk_gb) if found else None

    async def create(self, request: CreateRequest) -> Instance:
        """PUT /asks/{offer}/: 404/410 → the offer vanished; 5xx/timeout → the outcome is unknown."""
        offer_id = request.offer.offer_ref.split("|")[0]
        body = {
            "client_id": "me",
            "image": request.image,
            "disk": request.disk_gb,
            "label": request.name,
            "runtype": "ssh_direct",
            "env": {"ATEGNATOS_TAG": request.tag},
            "cancel_unavail": True,
            "target_state": "running",
        }
        try:
            response = await self._api.call("PUT", f"asks/{offer_id}/", json=body, timeout=60)
        except ProviderHttpError as exc:
            raise _create_error(exc) from exc
        assert response is not None
        contract = response.json().get("new_contract")
        if contract is None:
            raise CreateOutcomeUnknownError(
                "Vast.ai answered without an instance id; the rental may or may not exist.",
                service="vast",
                hint="Ategnatos checks Vast.ai's list by tag before doing anything else.",
            )
        found = await self.get(str(contract))
        return found or Instance(
            provider="vast", instance_id=str(contract), name=request.name, status=InstanceStatus.PENDING
        )

    async def get(self, instance_id: str) -> Instance | None:
        """GET /instances/{id}/?owner=me → ``{"instances": {...}}`` (one object, or null when gone)."""
        response = await self._api.call("GET", f"instances/{instance_id}/", params={"owner": "me"}, ok_missing=True)
        if response is None:
            return None
        data = response.json().get("instances")
        return _Instance.model_validate(data).to_instance() if isinstance(data, dict) else None

    async def list(self) -> list[Instance]:
        """GET /api/v1/instances/ page by page (25 a page, ``next_token``)."""
        instances: list[Instance] = []
        params: dict[str, str] = {"limit": "25", "order_by": json.dumps([{"col": "id", "dir": "asc"}])}
        for _ in range(40):
            response = await self._api.call("GET", self._list_url, params=params)
            assert response is not None
            data = response.json()
            instances.extend(_Instance.model_validate(item).to_instance() for item in data.get("instances") or [])
            token = data.get("next_token")
            if not token:
                break
            params = {**params, "after_token": str(token)}
        return instances

    async def stop(self, instance_id: str) -> None:
        """Stop: the GPU is released, the disk stays and keeps billing storage."""
        await self._api.call("PUT", f"instances/{instance_id}/", json={"state": "stopped"})

    async def terminate(self, instance_id: str) -> None:
        """DELETE /instances/{id}/ ends all billing; 404 = already gone."""
        await self._api.call("DELETE", f"instances/{instance_id}/", ok_missing=True)

    async def balance(self) -> Balance | None:
        """``credit`` from /users/current (the response also holds the API key: only ``credit`` is read)."""
        response = await self._api.call("GET", "users/current")
        assert response is not None
        credit = response.json().get("credit")
        return Balance(provider="vast", usd=float(credit) if credit is not None else None)

    async def register_ssh_key(self, public_key: str) -> str:
        """Account keys reach every current and future instance; add ours unless it is there."""
        response = await self._api.call("GET", "ssh/")
        assert response is not None
        listed = response.json()
        items = listed if isinstance(listed, list) else listed.get("keys", [])
        for item in items:
            text = str(item.get("key") or item.get("public_key") or "")
            if text.split()[:2] == public_key.split()[:2]:
                return str(item.get("id"))
        created = await self._api.call("POST", "ssh/", json={"ssh_key": public_key})
        assert created is not None
        return str((created.json().get("key") or {}).get("id", "account"))


def _offer(item: _Offer, disk_gb: int) -> GpuOffer:
    reliability = item.reliability if item.reliability is not None else item.reliability2
    return GpuOffer(
        provider="vast",
        offer_ref=f"{item.id}|{disk_gb}",
        gpu=unify_gpu_name(item.gpu_name),
        gpu_label=item.gpu_name,
        gpu_count=item.num_gpus,
        vram_gb=round(item.gpu_ram / 1024, 1),
        usd_per_hour=round(item.dph_total, 4),
        kind=f"marketplace host in {item.geolocation}" if item.geolocation else "marketplace host",
        storage_usd_per_gb_month=item.storage_cost,
        storage_billed_when_stopped=True,
        bandwidth_usd_per_gb=item.inet_down_cost,
        reliability=reliability,
        region=item.geolocation,
        max_cuda=item.cuda_max_good,
        notes=["Marketplace host: downloads and uploads are billed per GB; storage bills until destroyed."],
    )


def _create_error(exc: ProviderHttpError) -> ProviderHttpError:
    code = exc.body
    if exc.status in (404, 410):
        return OfferUnavailableError(
            "This Vast.ai offer was rented by someone else a moment ago.",
            service="vast",
            status=exc.status,
            hint="Another offer may work; ask for offers again.",
        )
    if exc.status == 400 and ("credit" in code or "balance" in code):
        return PaymentRequiredError(
            "Vast.ai says your credit is too low to rent this.",
            service="vast",
            status=400,
            hint="Add credit in the Vast.ai console, then ask for offers again.",
        )
    if exc.status is None or exc.status >= 500:
        return CreateOutcomeUnknownError(
            "Vast.ai did not confirm the rental; it may or may not have started.",
            service="vast",
            status=exc.status,
            hint="Ategnatos checks Vast.ai's list by tag before doing anything else.",
        )
    return exc
