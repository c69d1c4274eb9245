"""Unified shapes for every GPU cloud: offers, instances, status, quotes and the spend ledger."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ategnatos_mcp.state import Document

__all__ = [
    "MAX_HOURS",
    "MAX_USD_PER_HOUR",
    "MAX_VRAM_GB",
    "MIN_HOURS",
    "Balance",
    "CreateRequest",
    "GpuDocument",
    "GpuOffer",
    "Instance",
    "InstanceStatus",
    "LedgerEntry",
    "OfferQuery",
    "PendingCreate",
    "PriceAgreement",
    "ProviderName",
    "Quote",
    "Rental",
]

ProviderName = Literal["runpod", "vast", "lambda", "local"]


class InstanceStatus(StrEnum):
    """One status vocabulary across providers (see the providers README mapping)."""

    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"
    TERMINATED = "terminated"

    @property
    def billing(self) -> bool:
        """Whether the provider may still be charging for it (compute or storage)."""
        return self is not InstanceStatus.TERMINATED


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Sane bounds for what a user can ask: far above any real machine or plan, far below what breaks arithmetic.
MAX_VRAM_GB = 1024.0  # per GPU; the largest cards today have about 192 GB
MAX_USD_PER_HOUR = 1000.0
MAX_HOURS = 8760.0  # a year
MIN_HOURS = 0.01  # under a minute


class OfferQuery(_Frozen):
    """What the user asked for. Every field is optional except the hours the quote is for."""

    gpu: str | None = Field(default=None, max_length=100)
    min_vram_gb: float | None = Field(default=None, ge=0, le=MAX_VRAM_GB)
    gpu_count: int = Field(default=1, ge=1, le=8)
    max_usd_per_hour: float | None = Field(default=None, gt=0, le=MAX_USD_PER_HOUR)
    min_reliability: float | None = Field(default=None, ge=0, le=1)
    region: str | None = Field(default=None, max_length=100)
    hours: float = Field(default=1.0, ge=MIN_HOURS, le=MAX_HOURS)
    disk_gb: int = Field(default=60, ge=10, le=2000)
    min_cuda: str = Field(default="12.4", pattern=r"^\d+\.\d+$", description="CUDA the image needs from the host.")


class GpuOffer(_Frozen):
    """One rentable configuration, prices in USD per hour for the whole machine."""

    provider: ProviderName
    offer_ref: str = Field(
        description="What the provider needs to rent exactly this (offer id, gpu id|cloud, type|region)."
    )
    gpu: str = Field(description="Unified GPU name, e.g. RTX4090.")
    gpu_label: str = Field(description="The provider's own name for the GPU.")
    gpu_count: int = 1
    vram_gb: float
    usd_per_hour: float
    kind: str = Field(
        default="", description="What sets this offer apart from another of the same GPU, e.g. 'community cloud'."
    )
    storage_usd_per_gb_month: float | None = None
    storage_billed_when_stopped: bool = False
    bandwidth_usd_per_gb: float | None = Field(default=None, description="Download price per GB, where it is billed.")
    reliability: float | None = None
    region: str | None = None
    availability: str | None = None
    max_cuda: float | None = Field(default=None, description="Newest CUDA the host's driver runs, where listed.")
    notes: list[str] = Field(default_factory=list)


class CreateRequest(_Frozen):
    """Everything a provider needs to start one instance from an offer."""

    offer: GpuOffer
    name: str = Field(description="Carries the unique tag, so a lost create response can be found again.")
    tag: str
    image: str
    disk_gb: int = 60
    min_cuda: str = "12.4"
    ssh_public_key: str


class Instance(_Frozen):
    """An instance as the provider reports it right now."""

    provider: ProviderName
    instance_id: str
    name: str = ""
    status: InstanceStatus
    provider_status: str = ""
    status_detail: str = ""
    gpu: str = ""
    gpu_count: int = 1
    usd_per_hour: float | None = None
    ssh_host: str | None = None
    ssh_port: int | None = None
    ssh_user: str = "root"
    region: str | None = None
    created_at: datetime | None = None


class Balance(_Frozen):
    """Money left with a provider, where the API tells us."""

    provider: ProviderName
    usd: float | None
    spend_per_hour: float | None = None
    note: str = ""


class Quote(_Frozen):
    """A priced offer the user can accept by id, until it expires. Candidates are equivalent fallbacks."""

    quote_id: str
    query: OfferQuery
    offer: GpuOffer
    alternatives: list[GpuOffer] = Field(default_factory=list)
    hours: float
    worst_case_usd: float
    created_at: datetime
    expires_at: datetime
    used: bool = False


class PriceAgreement(_Frozen):
    """What the user said yes to. Kept on a rental until the provider's billed price is known and checked."""

    usd_per_hour: float = Field(description="The hourly price the user confirmed.")
    worst_case_usd: float = Field(description="The most the rental could cost at that price, as the user was told.")
    hours: float
    query: OfferQuery
    offer: GpuOffer = Field(description="The offer rented, so a refusal can quote its real price at once.")


class PendingCreate(_Frozen):
    """A create call we sent. Kept until the instance is found, so a lost answer never means a second rental."""

    tag: str
    provider: ProviderName
    name: str
    quote_id: str
    sent_at: datetime
    agreement: PriceAgreement | None = None


class Rental(_Frozen):
    """An instance we rented (or found running under our account), with what it costs."""

    provider: ProviderName
    instance_id: str
    name: str = ""
    tag: str = ""
    gpu: str = ""
    usd_per_hour: float = 0.0
    status: InstanceStatus = InstanceStatus.PENDING
    started_at: datetime
    ended_at: datetime | None = None
    max_hours: float | None = None
    boot_deadline: datetime | None = None
    ready: bool = False
    ssh_host: str | None = None
    ssh_port: int | None = None
    ssh_user: str = "root"
    quote_id: str | None = None
    orphan: bool = Field(default=False, description="Found at the provider, not rented through this grimoire.")
    final_usd: float | None = None
    unverified_price: PriceAgreement | None = Field(
        default=None, description="Set while the provider has not said what it bills; checked when it does."
    )

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.instance_id}"

    def cost_so_far(self, now: datetime) -> float:
        """Compute cost from start to end (or now) at the hourly rate."""
        if self.final_usd is not None:
            return self.final_usd
        end = self.ended_at or now
        hours = max((end - self.started_at).total_seconds(), 0.0) / 3600
        return round(hours * self.usd_per_hour, 4)


class LedgerEntry(_Frozen):
    """One line of the spend ledger."""

    at: datetime
    provider: ProviderName
    instance_id: str
    event: Literal["rented", "stopped", "terminated", "gone", "boot-timeout", "adopted", "price-refused"]
    usd_per_hour: float = 0.0
    usd: float = Field(default=0.0, description="Cost of this instance up to this event.")
    note: str = ""


class GpuDocument(Document):
    """grimoire/.state/gpu.json: quotes, pending creates, rentals and the spend ledger. Never any key."""

    quotes: dict[str, Quote] = Field(default_factory=dict)
    pending: dict[str, PendingCreate] = Field(default_factory=dict)
    rentals: dict[str, Rental] = Field(default_factory=dict)
    ledger: list[LedgerEntry] = Field(default_factory=list)
