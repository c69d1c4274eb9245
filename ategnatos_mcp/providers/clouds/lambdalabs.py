"""Lambda Cloud: whole VMs by instance type and region. No stop, no balance API; launches are rate limited."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.providers.clouds.base import (
    AnswerLimits,
    CreateOutcomeUnknownError,
    HttpApi,
    OfferUnavailableError,
    PaymentRequiredError,
    ProviderHttpError,
)
from ategnatos_mcp.providers.clouds.gpus import KNOWN_VRAM_GB, gpu_matches, lambda_gpu
from ategnatos_mcp.providers.models import (
    Balance,
    CreateRequest,
    GpuOffer,
    Instance,
    InstanceStatus,
    OfferQuery,
    ProviderName,
)

__all__ = ["LambdaProvider"]

_STATUS = {
    "booting": InstanceStatus.STARTING,
    "active": InstanceStatus.RUNNING,
    "unhealthy": InstanceStatus.FAILED,
    "preempted": InstanceStatus.FAILED,
    "terminating": InstanceStatus.TERMINATED,
    "terminated": InstanceStatus.TERMINATED,
}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Specs(_Loose):
    gpus: int = 0


class _Type(_Loose):
    name: str
    gpu_description: str = ""
    price_cents_per_hour: int
    specs: _Specs = _Specs()


class _Region(_Loose):
    name: str


class _Instance(_Loose):
    id: str
    name: str | None = None
    status: str
    ip: str | None = None
    region: _Region | None = None
    instance_type: _Type | None = None

    def to_instance(self) -> Instance:
        gpu, count = lambda_gpu(self.instance_type.name) if self.instance_type else ("", 0)
        price = self.instance_type.price_cents_per_hour / 100 if self.instance_type else None
        return Instance(
            provider="lambda",
            instance_id=self.id,
            name=self.name or "",
            status=_STATUS.get(self.status, InstanceStatus.FAILED),
            provider_status=self.status,
            gpu=gpu,
            gpu_count=max(count, 1),
            usd_per_hour=price,
            ssh_host=self.ip if self.status == "active" else None,
            ssh_port=22 if self.ip and self.status == "active" else None,
            ssh_user="ubuntu",
            region=self.region.name if self.region else None,
        )


class LambdaProvider:
    """Lambda Cloud. ``http`` carries the Bearer key and the ``/api/v1`` base URL."""

    name: ProviderName = "lambda"
    label = "Lambda"

    def __init__(self, http: httpx.AsyncClient, *, limits: AnswerLimits | None = None) -> None:
        self._api = HttpApi(http, service="lambda", label=self.label, limits=limits)
        self._key_name: str | None = None

    async def _types(self) -> dict[str, Any]:
        response = await self._api.call("GET", "instance-types")
        assert response is not None
        return response.json().get("data", {})

    async def offers(self, query: OfferQuery) -> list[GpuOffer]:
        """One offer per (instance type, region with capacity now)."""
        found: list[GpuOffer] = []
        for entry in (await self._types()).values():
            kind = _Type.model_validate(entry["instance_type"])
            gpu, count = lambda_gpu(kind.name)
            if not gpu or count != query.gpu_count or (query.gpu and not gpu_matches(gpu, query.gpu)):
                continue
            found.extend(_offer(kind, region["name"]) for region in entry.get("regions_with_capacity_available", []))
        return found

    async def quote(self, offer: GpuOffer) -> GpuOffer | None:
        """Today's price, if the type still has capacity in that region."""
        type_name, region = offer.offer_ref.split("|")
        entry = (await self._types()).get(type_name)
        if not entry or region not in {r["name"] for r in entry.get("regions_with_capacity_available", [])}:
            return None
        return _offer(_Type.model_validate(entry["instance_type"]), region)

    async def create(self, request: CreateRequest) -> Instance:
        """Launch one VM (never ``quantity``); insufficient capacity → try another candidate."""
        type_name, region = request.offer.offer_ref.split("|")
        key_name = self._key_name or await self.register_ssh_key(request.ssh_public_key)
        body = {
            "region_name": region,
            "instance_type_name": type_name,
            "ssh_key_names": [key_name],
            "name": request.name[:64],
            "tags": [{"key": "ategnatos", "value": request.tag}],
        }
        try:
            response = await self._api.call("POST", "instance-operations/launch", json=body, timeout=60)
        except ProviderHttpError as exc:
            raise _create_error(exc) from exc
        assert response is not None
        ids = response.json().get("data", {}).get("instance_ids", [])
        if not ids:
            raise CreateOutcomeUnknownError(
                "Lambda answered without an instance id; the rental may or may not exist.",
                service="lambda",
                hint="Ategnatos checks Lambda's list by tag before doing anything else.",
            )
        found = await self.get(ids[0])
        return found or Instance(
            provider="lambda", instance_id=ids[0], name=request.name, status=InstanceStatus.PENDING
        )

    async def get(self, instance_id: str) -> Instance | None:
        """GET /instances/{id}; 404 means it is gone."""
        response = await self._api.call("GET", f"instances/{instance_id}", ok_missing=True)
        return None if response is None else _Instance.model_validate(response.json()["data"]).to_instance()

    async def list(self) -> list[Instance]:
        """GET /instances (booting, active, terminating...)."""
        response = await self._api.call("GET", "instances")
        assert response is not None
        return [_Instance.model_validate(item).to_instance() for item in response.json().get("data", [])]

    async def stop(self, instance_id: str) -> None:
        """Lambda has no stop: only terminating ends the bill."""
        raise InvalidRequestError(
            "Lambda instances cannot be stopped, only terminated (its billing runs until then).",
            hint="Copy off anything you need, then tear it down with mode 'terminate'.",
        )

    async def terminate(self, instance_id: str) -> None:
        """POST /instance-operations/terminate; an unknown id is already gone."""
        await self._api.call(
            "POST", "instance-operations/terminate", json={"instance_ids": [instance_id]}, ok_missing=True
        )

    async def balance(self) -> Balance | None:
        """Lambda bills a card weekly; there is no balance to read."""
        return Balance(provider="lambda", usd=None, note="Lambda bills your card; it has no prepaid balance.")

    async def register_ssh_key(self, public_key: str) -> str:
        """Keys are used by name: reuse one whose key matches, else add ours under a unique name."""
        response = await self._api.call("GET", "ssh-keys")
        assert response is not None
        for item in response.json().get("data", []):
            if str(item.get("public_key", "")).split()[:2] == public_key.split()[:2]:
                self._key_name = str(item["name"])
                return self._key_name
        name = "ategnatos-" + hashlib.sha256(public_key.split()[1].encode()).hexdigest()[:8]
        await self._api.call("POST", "ssh-keys", json={"name": name, "public_key": public_key})
        self._key_name = name
        return name


def _offer(kind: _Type, region: str) -> GpuOffer:
    gpu, count = lambda_gpu(kind.name)
    match = re.search(r"(\d+)\s*GB", kind.gpu_description)
    vram = float(match.group(1)) if match else KNOWN_VRAM_GB.get(gpu, 0.0)
    return GpuOffer(
        provider="lambda",
        offer_ref=f"{kind.name}|{region}",
        gpu=gpu,
        gpu_label=kind.gpu_description or kind.name,
        gpu_count=count,
        vram_gb=vram,
        usd_per_hour=kind.price_cents_per_hour / 100,
        kind=f"whole VM in {region}",
        region=region,
        notes=["A whole VM, billed by the minute until terminated; it cannot be paused."],
    )


def _create_error(exc: ProviderHttpError) -> ProviderHttpError:
    code = exc.body
    if exc.status == 400 and "insufficient-capacity" in code:
        return OfferUnavailableError(
            "Lambda has no capacity for this instance type in that region right now.",
            service="lambda",
            status=400,
            hint="Another offer may work; ask for offers again.",
        )
    if exc.status == 403 and ("account-inactive" in code or "invalid-address" in code):
        return PaymentRequiredError(
            "Lambda refused to launch: the account has no valid payment method or billing address.",
            service="lambda",
            status=403,
            hint="Fix billing in the Lambda console, then ask for offers again.",
        )
    if exc.status is None or exc.status >= 500:
        return CreateOutcomeUnknownError(
            "Lambda did not confirm the launch; it may or may not have started.",
            service="lambda",
            status=exc.status,
            hint="Ategnatos checks Lambda's list by tag before doing anything else.",
        )
    return exc
